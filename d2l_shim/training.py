"""Framework-free parts of a GAN training loop: the epoch plumbing and its checks."""
import math

from . import plotting, swd, timing


class DivergedError(FloatingPointError):
    """A loss became NaN or infinite; the message names the epoch and network."""


def check_finite_losses(epoch, loss_D, loss_G):
    """Raise DivergedError if either average loss of ``epoch`` is not finite.

    A GAN that diverges keeps printing ``nan`` for as long as it is allowed to
    run; stopping at the first bad epoch saves those hours and says where.
    """
    for network, value in (("discriminator", loss_D), ("generator", loss_G)):
        if not math.isfinite(value):
            raise DivergedError(
                f"the {network} loss became {value} in epoch {epoch}: training "
                "diverged. Lower the learning rate, or check the data scaling "
                "(images in [-1, 1]) and the loss (BCE on logits).")


#: Shown samples and SWD samples come from streams of their own, far beyond
#: any epoch number, so looking at the generator never changes its training.
_GRID_STREAM, _SWD_STREAM, _COMPARE_STREAM = 1_000_001, 1_000_002, 1_000_003
_GRID_ROWS, _GRID_COLS = 3, 7


class TrainingRun:
    """Everything around the adversarial loop that is not the loop itself.

    ``for epoch in run.epochs(): ...`` yields the epochs still to train. Before
    each it reseeds every generator from (seed, epoch), so a resumed run
    repeats the draws of an uninterrupted one; after each it checks the losses
    fed to :meth:`add`, scores the generator by the sliced Wasserstein distance
    (SWD) to ``held_out`` (uint8 images (N, 64, 64, 3)), redraws the figure
    (losses, SWD, a 3x7 grid from fixed latents) and, given a ``checkpoint``
    path, saves networks, optimizers and history there. Calling ``epochs()``
    again with the same checkpoint continues after the last finished epoch.

    ``history`` holds one row (loss_D, loss_G, swd) per epoch, row 0 being the
    untrained generator (no losses). Framework modules subclass it with their
    own ``set_seed``, ``sample_images`` and checkpoint functions.
    """

    _framework = None  # the shim module; set by each framework's subclass

    def __init__(self, net_D, net_G, trainer_D, trainer_G, data_iter, held_out,
                 latent_dim, num_epochs, seed=0, checkpoint=None):
        self.nets = (net_D, net_G)
        self.trainers = (trainer_D, trainer_G)
        self.data_iter, self.held_out = data_iter, held_out
        self.latent_dim, self.num_epochs = latent_dim, num_epochs
        self.seed, self.checkpoint = seed, checkpoint
        self.history = []
        self.examples_per_sec = None
        self._metric, self._timer = timing.Accumulator(3), timing.Timer()

    def add(self, loss_D, loss_G, num_examples):
        """Count one batch's summed losses and its size."""
        self._metric.add(loss_D, loss_G, num_examples)

    def epochs(self):
        """Yield the epoch numbers still to train, doing the plumbing around each."""
        fw = self._framework
        if self.checkpoint:
            self.history = fw.load_checkpoint(self.checkpoint, *self.nets, *self.trainers,
                                              self.data_iter, self.seed)
        if not self.history:
            self.history = [(math.nan, math.nan, self._swd())]
        self._start_figure()
        for epoch in range(len(self.history), self.num_epochs + 1):
            fw.set_seed(self.seed, epoch)
            self._metric.reset()
            self._timer.start()
            yield epoch
            self._timer.stop()
            examples = self._metric[2]
            loss_D, loss_G = self._metric[0] / examples, self._metric[1] / examples
            check_finite_losses(epoch, loss_D, loss_G)
            self.examples_per_sec = examples / self._timer.times[-1]
            self.history.append((loss_D, loss_G, self._swd()))
            self._draw()
            if self.checkpoint:
                fw.save_checkpoint(self.checkpoint, *self.nets, *self.trainers,
                                   self.history, self.seed)
        if self.examples_per_sec is None:
            print(f"{self.checkpoint} already holds {len(self.history) - 1} epochs: "
                  "nothing to train")
        else:
            loss_D, loss_G, _ = self.history[-1]
            print(f"loss_D {loss_D:.3f}, loss_G {loss_G:.3f}, "
                  f"{self.examples_per_sec:.1f} examples/sec on {fw.try_gpu()}")

    def swd_summary(self):
        """Two lines: the untrained SWD and the median of the last epochs'."""
        judged = [row[2] for row in self.history[1:]]
        if not judged:
            raise ValueError("no epoch trained yet: call swd_summary after training")
        return swd.summary(len(self.held_out), self.history[0][2], judged)

    def show_real_and_generated(self, num_rows=4, num_cols=5):
        """Held-out images beside as many new samples, at the same size."""
        count = num_rows * num_cols
        real = self.held_out[:count]
        fake = self._sample(_COMPARE_STREAM, count)
        plotting.use_svg_display()
        fig, axes = plotting.plt.subplots(1, 2, figsize=(7.5, 7.5 * num_rows / num_cols / 2 + 0.5))
        for ax, images, title in zip(axes, (real, fake), ("held-out images", "generated")):
            ax.imshow(plotting.image_grid(images, num_rows, num_cols), interpolation="nearest")
            ax.set_title(title)
            ax.axis("off")
        fig.tight_layout()
        return axes

    def sample_grid(self):
        """The figure's 3 x 7 samples, from the same latent vectors after every
        epoch, tiled into one uint8 image (3 * 64, 7 * 64, 3)."""
        return plotting.image_grid(self._sample(_GRID_STREAM, _GRID_ROWS * _GRID_COLS),
                                   _GRID_ROWS, _GRID_COLS)

    def _sample(self, stream, num_images):
        self._framework.set_seed(self.seed, stream)  # the same latents every time
        return self._framework.sample_images(self.nets[1], num_images, self.latent_dim)

    def _swd(self):
        fake = self._sample(_SWD_STREAM, len(self.held_out))
        return swd.sliced_wasserstein_distance(fake, self.held_out)["mean"]

    def _start_figure(self):
        self._animator = plotting.Animator(
            xlabel="epoch", ylabel="loss", xlim=[1, max(self.num_epochs, 2)], nrows=2,
            ncols=2, figsize=(7.5, 6.2), legend=["discriminator", "generator"])
        fig, axes = self._animator.fig, self._animator.axes
        for ax in axes[2:]:
            ax.remove()
        self._grid_axes = fig.add_subplot(axes[0].get_gridspec()[1, :])
        fig.subplots_adjust(hspace=0.25, wspace=0.3)
        self._draw()

    def _draw(self):
        epochs = range(len(self.history))
        ax = self._animator.axes[1]
        ax.cla()
        ax.axhline(self.history[0][2], color="gray", linestyle="--", label="untrained")
        ax.plot(list(epochs), [row[2] for row in self.history], "o-", color="C2",
                markersize=3, label="generator")
        plotting.set_axes(ax, "epoch", "SWD to held-out images", [0, self.num_epochs],
                          [0, None], "linear", "linear", ["untrained", "generator"])
        self._grid_axes.cla()
        self._grid_axes.imshow(self.sample_grid(), interpolation="nearest")
        self._grid_axes.set_title(f"generated after epoch {len(self.history) - 1}")
        self._grid_axes.axis("off")
        # The loss panel last: Animator.add shows the whole figure.
        for epoch in range(len(self._animator.X[0]) + 1 if self._animator.X else 1,
                           len(self.history)):
            self._animator.add(epoch, self.history[epoch][:2])


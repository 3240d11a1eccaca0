"""Framework-free plotting helpers: NumPy arrays in, matplotlib figures out.

The public names and signatures follow the ``d2l`` package (``plot``,
``set_axes``, ``set_figsize``, ``use_svg_display``, ``Animator``,
``show_images``) so that book code written for it runs unchanged.  Two extra
pure helpers, :func:`image_grid` and :func:`to_displayable`, prepare batches
of generated images for display.

Framework tensors are not imported here; the helpers accept anything that
``np.asarray`` understands, plus objects that expose a ``detach``/``asnumpy``/
``numpy`` method (duck typing, so no framework is needed to import this file).
"""

import numpy as np
from matplotlib import pyplot as plt

__all__ = ['plt', 'use_svg_display', 'set_figsize', 'set_axes', 'plot',
           'Animator', 'image_grid', 'show_images', 'to_displayable']

DEFAULT_FMTS = ('-', 'm--', 'g-.', 'r:')


# --------------------------------------------------------------------------
# Environment detection
# --------------------------------------------------------------------------

def _ipython_shell():
    """Return the running IPython shell, or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _in_notebook_kernel():
    """True when code runs in a Jupyter kernel (live or nbconvert-executed).

    Only a kernel can render ``display(fig)`` as an image; a terminal IPython
    would print the figure's repr on every frame instead.
    """
    shell = _ipython_shell()
    return shell is not None and getattr(shell, 'kernel', None) is not None


def use_svg_display():
    """Ask IPython to render inline figures as SVG; do nothing elsewhere."""
    if _ipython_shell() is None:
        return
    try:
        from matplotlib_inline import backend_inline
        backend_inline.set_matplotlib_formats('svg')
    except Exception:  # a nicer format is optional, never fatal
        pass


def set_figsize(figsize=(3.5, 2.5)):
    """Set the default size of new matplotlib figures (in inches)."""
    use_svg_display()
    plt.rcParams['figure.figsize'] = figsize


# --------------------------------------------------------------------------
# Array conversion
# --------------------------------------------------------------------------

def _to_numpy(values):
    """Convert arrays, lists and framework tensors to a NumPy array.

    Tensors are recognised by their methods so no framework is imported:
    PyTorch (``detach``), MXNet (``asnumpy``) and TensorFlow (``numpy``).
    """
    if isinstance(values, np.ndarray):
        return values
    if hasattr(values, 'detach'):
        values = values.detach()
        if hasattr(values, 'cpu'):
            values = values.cpu()
        return np.asarray(values.numpy())
    if hasattr(values, 'asnumpy'):
        return values.asnumpy()
    if hasattr(values, 'numpy') and not isinstance(values, np.generic):
        return np.asarray(values.numpy())
    return np.asarray(values)


def _is_single_series(values):
    """True if ``values`` is one 1-D series rather than a list of series."""
    if hasattr(values, 'ndim'):
        return values.ndim == 1
    if isinstance(values, (list, tuple)):
        return len(values) == 0 or np.ndim(values[0]) == 0
    return False


# --------------------------------------------------------------------------
# Axes and line plots
# --------------------------------------------------------------------------

def set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend):
    """Apply labels, limits, scales, legend and a grid to ``axes``."""
    if xlabel is not None:
        axes.set_xlabel(xlabel)
    if ylabel is not None:
        axes.set_ylabel(ylabel)
    axes.set_xscale(xscale)
    axes.set_yscale(yscale)
    if xlim is not None:
        axes.set_xlim(xlim)
    if ylim is not None:
        axes.set_ylim(ylim)
    if legend:
        # Legend entries may be numbers (e.g. slopes); matplotlib wants text.
        axes.legend([str(label) for label in legend])
    axes.grid()


def line_formats(fmts, count):
    """``count`` format strings: ``fmts`` first, then plain solid lines.

    d2l zips the curves with its four formats and silently drops a fifth curve;
    extra curves here get ``'-'`` with no colour, so matplotlib gives each one
    the next colour of its cycle.
    """
    return [fmts[i] if i < len(fmts) else '-' for i in range(count)]


def plot(X, Y=None, xlabel=None, ylabel=None, legend=None, xlim=None,
         ylim=None, xscale='linear', yscale='linear', fmts=DEFAULT_FMTS,
         figsize=(3.5, 2.5), axes=None):
    """Plot one or several curves.

    ``X`` is one series or a list of series.  If ``Y`` is None, every series
    in ``X`` is plotted against its index; otherwise ``Y`` (one series or a
    list) is plotted against ``X``, reusing a single ``X`` for all ``Y``.
    Returns None, like d2l, so a notebook cell ending in ``plot(...)`` shows
    only the figure.
    """
    if legend is None:
        legend = []
    set_figsize(figsize)
    axes = axes if axes is not None else plt.gca()

    if _is_single_series(X):
        X = [X]
    if Y is None:
        X, Y = [None] * len(X), X
    elif _is_single_series(Y):
        Y = [Y]
    if len(X) != len(Y):
        X = list(X) * len(Y)

    axes.cla()
    for x, y, fmt in zip(X, Y, line_formats(fmts, len(Y))):
        y = _to_numpy(y)
        if x is None or len(x) == 0:
            axes.plot(y, fmt)
        else:
            axes.plot(_to_numpy(x), y, fmt)
    set_axes(axes, xlabel, ylabel, xlim, ylim, xscale, yscale, legend)


class Animator:
    """Draw curves that grow point by point, e.g. losses during training.

    ``axes`` is always a flat list of Axes.  The curves go in ``axes[0]``;
    with ``nrows * ncols > 1`` the other axes are free for the caller (for
    instance ``axes[1].imshow(...)`` to show generated images).

    In a Jupyter kernel each :meth:`add` displays the figure and clears the
    previous frame, so an executed notebook keeps only the last frame.
    Elsewhere (scripts, unit tests) the figure is only updated in memory.
    """

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None,
                 ylim=None, xscale='linear', yscale='linear',
                 fmts=DEFAULT_FMTS, nrows=1, ncols=1, figsize=(3.5, 2.5)):
        use_svg_display()
        self.fig, axes = plt.subplots(nrows, ncols, figsize=figsize,
                                      squeeze=False)
        self.axes = list(axes.ravel())
        self._axes_config = dict(xlabel=xlabel, ylabel=ylabel, xlim=xlim,
                                 ylim=ylim, xscale=xscale, yscale=yscale,
                                 legend=legend if legend is not None else [])
        self.fmts = fmts
        self.X, self.Y = None, None

    def config_axes(self):
        """Re-apply labels, limits and legend after the curves are redrawn."""
        set_axes(self.axes[0], **self._axes_config)

    def add(self, x, y):
        """Append one point to each curve and redraw.

        ``y`` is a scalar or a sequence with one value per curve; ``x`` is a
        scalar shared by all curves or a sequence of the same length.  A
        None in ``y`` skips that curve for this step.
        """
        if not hasattr(y, '__len__'):
            y = [y]
        n = len(y)
        if not hasattr(x, '__len__'):
            x = [x] * n
        if self.X is None:
            self.X = [[] for _ in range(n)]
            self.Y = [[] for _ in range(n)]
        if n != len(self.Y):
            raise ValueError(
                f'Animator.add got {n} values but the animator was started '
                f'with {len(self.Y)} curves')
        for i, (a, b) in enumerate(zip(x, y)):
            if a is not None and b is not None:
                self.X[i].append(float(a))
                self.Y[i].append(float(b))
        self._redraw()

    def _progress(self):
        """How far along the x axis the curves are, for a notebook runner's
        progress bar (``tools.execute`` reads it); {} without an xlim."""
        xlim = self._axes_config['xlim']
        if not xlim or not self.X or not self.X[0]:
            return {}
        done = max(xs[-1] for xs in self.X if xs)
        unit = self._axes_config['xlabel'] or 'step'
        return {'d2l_progress': {'done': int(done), 'total': int(xlim[1]),
                                 'unit': unit}}

    def _redraw(self):
        curves_axes = self.axes[0]
        curves_axes.cla()
        for xs, ys, fmt in zip(self.X, self.Y, line_formats(self.fmts, len(self.Y))):
            curves_axes.plot(xs, ys, fmt)
        self.config_axes()
        if _in_notebook_kernel():
            from IPython import display
            display.display(self.fig, metadata=self._progress())
            # wait=True: the old frame is removed only when the next output
            # arrives, which avoids flicker and keeps just the final frame.
            display.clear_output(wait=True)


# --------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------

def to_displayable(images):
    """Make an image array safe for ``imshow``.

    Floats (e.g. ``tanh_output / 2 + 0.5``) are clipped into [0, 1], since
    imshow warns about and clips values outside that range; float16 is
    widened to float32 because imshow does not accept it.  uint8 is
    returned unchanged.  Other integer types are clipped into [0, 255] and
    stored as uint8.  Booleans become 0.0 / 1.0 floats.
    """
    images = _to_numpy(images)
    if images.dtype == np.uint8:
        return images
    if images.dtype == np.bool_:
        return images.astype(np.float32)
    if np.issubdtype(images.dtype, np.floating):
        if images.dtype == np.float16:
            images = images.astype(np.float32)
        return np.clip(images, 0.0, 1.0)
    if np.issubdtype(images.dtype, np.integer):
        return np.clip(images, 0, 255).astype(np.uint8)
    raise TypeError(f'cannot display images of dtype {images.dtype}')


def image_grid(images, num_rows, num_cols):
    """Tile a batch of images into one big image, row by row.

    Args:
        images: array of shape (N, H, W, C) with N >= num_rows * num_cols.
            Extra images beyond ``num_rows * num_cols`` are ignored.
        num_rows, num_cols: grid size.

    Returns:
        Array of shape (num_rows * H, num_cols * W, C) and the same dtype;
        image ``k`` lands in grid row ``k // num_cols``, column
        ``k % num_cols``.
    """
    images = _to_numpy(images)
    if images.ndim != 4:
        raise ValueError(
            f'image_grid expects images of shape (N, H, W, C), got an array '
            f'of shape {images.shape} (rank {images.ndim})')
    if int(num_rows) < 1 or int(num_cols) < 1:
        raise ValueError(f'grid size must be positive, got '
                         f'{num_rows} x {num_cols}')
    num_rows, num_cols = int(num_rows), int(num_cols)
    needed = num_rows * num_cols
    count, height, width, channels = images.shape
    if count < needed:
        raise ValueError(
            f'a {num_rows} x {num_cols} grid needs {needed} images, '
            f'got only {count}')
    grid = images[:needed].reshape(num_rows, num_cols, height, width,
                                   channels)
    # Bring each grid row's image rows together: (rows, H, cols, W, C).
    grid = grid.transpose(0, 2, 1, 3, 4)
    return grid.reshape(num_rows * height, num_cols * width, channels)


def _prepare_single_image(image):
    """Return (array, imshow keyword arguments) for one (H, W[, C]) image."""
    image = to_displayable(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        # imshow rejects (H, W, 1); a single channel is a grayscale image.
        image = image[..., 0]
    if image.ndim == 2:
        # Fix the value range: imshow would otherwise stretch each grayscale
        # image to its own min/max and hide how bright it really is.
        vmax = 255 if image.dtype == np.uint8 else 1.0
        return image, dict(cmap='gray', vmin=0, vmax=vmax)
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        return image, {}
    raise ValueError(f'cannot show an image of shape {image.shape}; expected '
                     f'(H, W), (H, W, 1), (H, W, 3) or (H, W, 4)')


def show_images(imgs, num_rows, num_cols, titles=None, scale=1.5):
    """Show images in a ``num_rows`` x ``num_cols`` grid of subplots.

    ``imgs`` is an (N, H, W, C) or (N, H, W) array (or a list of images)
    with float values in [0, 1] or uint8 values.  Ticks are hidden.  Returns
    the flat array of Axes.
    """
    figsize = (num_cols * scale, num_rows * scale)
    _, axes = plt.subplots(num_rows, num_cols, figsize=figsize, squeeze=False)
    axes = axes.ravel()
    for i, (ax, img) in enumerate(zip(axes, imgs)):
        image, imshow_kwargs = _prepare_single_image(img)
        ax.imshow(image, **imshow_kwargs)
        ax.axes.get_xaxis().set_visible(False)
        ax.axes.get_yaxis().set_visible(False)
        if titles:
            ax.set_title(str(titles[i]))
    return axes

"""Tests for d2l_shim.plotting (framework-free, matplotlib Agg backend)."""

import warnings

import pytest

np = pytest.importorskip('numpy')
matplotlib = pytest.importorskip('matplotlib')
matplotlib.use('Agg')

from matplotlib import pyplot as plt  # noqa: E402

from d2l_shim import plotting  # noqa: E402
from d2l_shim.plotting import Animator, image_grid, plot, set_axes, show_images, to_displayable  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close('all')


def line_data(ax):
    return [(line.get_xdata(), line.get_ydata()) for line in ax.get_lines()]


# ---------------------------------------------------------------- plot ----

def test_plot_single_series_against_index():
    _, ax = plt.subplots()
    plot([3.0, 1.0, 2.0], axes=ax)
    (xs, ys), = line_data(ax)
    np.testing.assert_array_equal(xs, [0, 1, 2])
    np.testing.assert_array_equal(ys, [3, 1, 2])


def test_plot_one_x_many_y_with_numeric_legend():
    _, ax = plt.subplots()
    x = np.arange(5)
    slopes = [0, 0.2, 0.4]
    plot(x, [s * x for s in slopes], xlabel='x', ylabel='y',
         legend=slopes, xlim=[0, 4], ylim=(-1, 2), axes=ax)
    lines = line_data(ax)
    assert len(lines) == 3
    for (xs, ys), slope in zip(lines, slopes):
        np.testing.assert_allclose(xs, x)
        np.testing.assert_allclose(ys, slope * x)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == \
        ['0', '0.2', '0.4']
    assert ax.get_xlabel() == 'x' and ax.get_ylabel() == 'y'
    assert ax.get_xlim() == (0, 4) and ax.get_ylim() == (-1, 2)


def test_plot_list_of_x_and_list_of_y():
    _, ax = plt.subplots()
    plot([np.arange(3), np.arange(4)], [np.ones(3), np.zeros(4)], axes=ax)
    lines = line_data(ax)
    assert [len(xs) for xs, _ in lines] == [3, 4]
    np.testing.assert_array_equal(lines[1][1], np.zeros(4))


def test_plot_several_series_without_x():
    _, ax = plt.subplots()
    plot([np.array([1, 2]), np.array([5, 6, 7])], axes=ax)
    lines = line_data(ax)
    np.testing.assert_array_equal(lines[1][0], [0, 1, 2])
    np.testing.assert_array_equal(lines[1][1], [5, 6, 7])


def test_plot_2d_array_rows_are_series():
    _, ax = plt.subplots()
    x = np.linspace(0, 1, 4)
    plot(x, np.stack([x, 2 * x]), axes=ax)
    lines = line_data(ax)
    assert len(lines) == 2
    np.testing.assert_allclose(lines[1][1], 2 * x)


def test_plot_uses_current_axes_and_log_scale():
    plot(np.arange(1, 5), [np.arange(1, 5) ** 2], yscale='log')
    ax = plt.gca()
    assert ax.get_yscale() == 'log'
    assert len(ax.get_lines()) == 1


def test_plot_redraw_replaces_old_lines():
    _, ax = plt.subplots()
    plot([1, 2], axes=ax)
    plot([1, 2, 3], axes=ax)
    assert len(ax.get_lines()) == 1


def test_set_axes_without_legend_has_no_legend():
    _, ax = plt.subplots()
    ax.plot([0, 1])
    set_axes(ax, None, None, None, None, 'linear', 'linear', [])
    assert ax.get_legend() is None


def test_set_figsize_changes_default():
    old = plt.rcParams['figure.figsize']
    try:
        plotting.set_figsize((4, 3))
        assert tuple(plt.rcParams['figure.figsize']) == (4, 3)
    finally:
        plt.rcParams['figure.figsize'] = old


def test_use_svg_display_is_silent_outside_ipython():
    plotting.use_svg_display()  # must neither raise nor print


# ------------------------------------------------------------ Animator ----

def test_animator_accumulates_points():
    animator = Animator(xlabel='epoch', legend=['D', 'G'], xlim=[1, 3])
    for epoch, (d, g) in enumerate([(1.0, 2.0), (0.5, 1.5), (0.2, 1.0)], 1):
        animator.add(epoch, (np.float32(d), g))
    lines = line_data(animator.axes[0])
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0][0], [1, 2, 3])
    np.testing.assert_allclose(lines[0][1], [1.0, 0.5, 0.2])
    np.testing.assert_allclose(lines[1][1], [2.0, 1.5, 1.0])
    assert animator.axes[0].get_xlabel() == 'epoch'
    assert animator.axes[0].get_xlim() == (1, 3)
    assert [t.get_text() for t in
            animator.axes[0].get_legend().get_texts()] == ['D', 'G']


def test_animator_scalar_y_and_skipped_values():
    animator = Animator()
    animator.add(0, 1.0)
    animator.add(1, 2.0)
    assert len(animator.axes) == 1
    (xs, ys), = line_data(animator.axes[0])
    np.testing.assert_allclose(ys, [1.0, 2.0])

    two = Animator(legend=['a', 'b'])
    two.add(0, (1.0, None))
    two.add(1, (2.0, 3.0))
    lines = line_data(two.axes[0])
    assert len(lines[0][0]) == 2 and len(lines[1][0]) == 1


def test_animator_two_rows_leaves_second_axes_free():
    animator = Animator(nrows=2, figsize=(5, 5), legend=['D', 'G'])
    assert len(animator.axes) == 2
    animator.axes[1].imshow(np.zeros((8, 8, 3)))
    animator.add(1, (0.7, 0.3))
    assert len(animator.axes[0].get_lines()) == 2
    assert len(animator.axes[1].get_images()) == 1
    assert animator.fig is animator.axes[0].figure


def test_animator_grid_axes_are_flat():
    animator = Animator(nrows=2, ncols=2)
    assert len(animator.axes) == 4
    assert all(hasattr(ax, 'plot') for ax in animator.axes)


def test_animator_rejects_changing_number_of_curves():
    animator = Animator()
    animator.add(0, (1.0, 2.0))
    with pytest.raises(ValueError, match='2 curves'):
        animator.add(1, (1.0, 2.0, 3.0))


def test_animator_does_not_display_outside_notebook(monkeypatch, capsys):
    ipython_display = pytest.importorskip('IPython.display')
    calls = []
    monkeypatch.setattr(ipython_display, 'display',
                        lambda *a, **k: calls.append(a))
    Animator().add(0, 1.0)
    assert calls == []
    assert capsys.readouterr().out == ''


def test_animator_displays_in_notebook_kernel(monkeypatch):
    ipython_display = pytest.importorskip('IPython.display')
    shown, cleared = [], []
    monkeypatch.setattr(plotting, '_in_notebook_kernel', lambda: True)
    monkeypatch.setattr(ipython_display, 'display',
                        lambda obj, metadata: shown.append((obj, metadata)))
    monkeypatch.setattr(ipython_display, 'clear_output',
                        lambda wait=False: cleared.append(wait))
    animator = Animator()
    animator.add(0, 1.0)
    animator.add(1, 2.0)
    assert shown == [(animator.fig, {})] * 2  # no xlim: no progress to report
    assert cleared == [True, True]
    shown.clear()
    animator = Animator(xlabel='epoch', xlim=[1, 5])
    animator.add(1, 1.0)
    animator.add(2, 2.0)
    assert [metadata for _, metadata in shown] == [
        {'d2l_progress': {'done': done, 'total': 5, 'unit': 'epoch'}} for done in (1, 2)]


# -------------------------------------------------------------- images ----

def numbered_images(n, h=2, w=3, c=1):
    """Image k is filled with the value k, so tiles can be identified."""
    return np.arange(n, dtype=np.float32)[:, None, None, None] * \
        np.ones((n, h, w, c), dtype=np.float32)


def test_image_grid_shape_and_row_major_order():
    images = numbered_images(7, h=2, w=3, c=3)
    grid = image_grid(images, 2, 3)
    assert grid.shape == (4, 9, 3)
    assert grid.dtype == np.float32
    for k in range(6):
        row, col = divmod(k, 3)
        tile = grid[row * 2:(row + 1) * 2, col * 3:(col + 1) * 3]
        assert np.all(tile == k), f'tile {k} misplaced'


def test_image_grid_keeps_pixel_layout_inside_tiles():
    images = np.random.default_rng(0).integers(
        0, 256, size=(4, 3, 5, 3), dtype=np.uint8)
    grid = image_grid(images, 2, 2)
    assert grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[3:6, 0:5], images[2])
    np.testing.assert_array_equal(grid[0:3, 5:10], images[1])


def test_image_grid_too_few_images():
    with pytest.raises(ValueError, match='needs 6 images, got only 5'):
        image_grid(numbered_images(5), 2, 3)


def test_image_grid_wrong_rank():
    with pytest.raises(ValueError, match=r'\(N, H, W, C\)'):
        image_grid(np.zeros((4, 8, 8)), 2, 2)


def test_image_grid_bad_grid_size():
    with pytest.raises(ValueError, match='positive'):
        image_grid(numbered_images(4), 0, 2)


def test_to_displayable_clips_floats_and_keeps_uint8():
    raw = np.array([-0.2, 0.0, 0.5, 1.0, 1.3], dtype=np.float32)
    shown = to_displayable(raw)
    np.testing.assert_allclose(shown, [0.0, 0.0, 0.5, 1.0, 1.0])
    assert shown.dtype == np.float32
    assert raw[0] == np.float32(-0.2), 'input must not be modified'

    pixels = np.array([0, 128, 255], dtype=np.uint8)
    assert to_displayable(pixels) is pixels

    np.testing.assert_array_equal(
        to_displayable(np.array([-5, 300], dtype=np.int64)), [0, 255])
    assert to_displayable(np.zeros(2, np.float16)).dtype == np.float32


def test_to_displayable_tanh_output_round_trip():
    tanh_out = np.tanh(np.linspace(-5, 5, 11)) * 1.0001  # slightly beyond
    shown = to_displayable(tanh_out / 2 + 0.5)
    assert shown.min() >= 0.0 and shown.max() <= 1.0


@pytest.mark.parametrize('shape', [(6, 8, 8, 3), (6, 8, 8), (6, 8, 8, 1)])
def test_show_images_shapes_and_hidden_ticks(shape):
    imgs = np.random.default_rng(1).uniform(-0.1, 1.1, size=shape)
    with warnings.catch_warnings():
        # Out-of-range floats must be clipped, not warned about.
        warnings.simplefilter('error')
        axes = show_images(imgs, 2, 3, titles=list('abcdef'), scale=1.0)
    assert len(axes) == 6
    assert axes[0].figure.get_size_inches() == pytest.approx((3.0, 2.0))
    for ax, title in zip(axes, 'abcdef'):
        assert len(ax.get_images()) == 1
        assert not ax.get_xaxis().get_visible()
        assert not ax.get_yaxis().get_visible()
        assert ax.get_title() == title


def test_show_images_uint8_and_single_cell():
    imgs = np.full((1, 4, 4, 3), 200, dtype=np.uint8)
    axes = show_images(imgs, 1, 1)
    assert len(axes) == 1
    np.testing.assert_array_equal(axes[0].get_images()[0].get_array(),
                                  imgs[0])


def test_show_images_grayscale_keeps_absolute_range():
    axes = show_images(np.full((1, 4, 4), 0.25), 1, 1)
    image = axes[0].get_images()[0]
    assert image.get_clim() == (0, 1.0)


def test_show_images_rejects_bad_channel_count():
    with pytest.raises(ValueError, match='cannot show an image of shape'):
        show_images(np.zeros((1, 4, 4, 2)), 1, 1)


def test_figures_render_with_agg(tmp_path):
    animator = Animator(nrows=2)
    animator.add(1, (1.0, 2.0))
    animator.axes[1].imshow(image_grid(numbered_images(4, c=3) / 3, 2, 2))
    out = tmp_path / 'frame.png'
    animator.fig.savefig(out)
    assert out.stat().st_size > 0


def test_plot_draws_every_curve_beyond_the_four_formats():
    x = np.arange(-2, 1, 0.1)
    slopes = [0, 0.2, 0.4, 0.6, 0.8, 1]
    axes = plt.figure().gca()
    plotting.plot(x, [np.where(x > 0, x, a * x) for a in slopes], legend=slopes, axes=axes)
    lines = axes.get_lines()
    assert len(lines) == 6
    assert len({line.get_color() for line in lines}) == 6
    assert [t.get_text() for t in axes.get_legend().get_texts()] == [str(a) for a in slopes]

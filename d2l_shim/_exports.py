"""The framework-free names that every framework module re-exports (see api)."""
from .fashion_mnist import get_fashion_mnist_labels, load_fashion_mnist_arrays  # noqa: F401
from .hub import DATA_HUB, DATA_URL, download, download_extract  # noqa: F401
from .images import hold_out, read_image_folder  # noqa: F401
from .plotting import Animator, image_grid, plot, set_axes, set_figsize, use_svg_display  # noqa: F401
from .profiles import profile_name  # noqa: F401
from .swd import sliced_wasserstein_distance  # noqa: F401
from .timing import Accumulator, Timer  # noqa: F401
from .training import check_finite_losses  # noqa: F401

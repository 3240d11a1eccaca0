"""The public names every framework module of the shim exposes.

``SHARED`` names are framework-free objects defined once (module -> names); each
framework module re-exports the very same objects. ``PER_FRAMEWORK`` names are
written per framework and must keep these signatures, so a chapter reads the
same in every tab. ``tests/test_api.py`` checks both.
"""

SHARED = {
    "d2l_shim.timing": ("Timer", "Accumulator"),
    "d2l_shim.plotting": ("use_svg_display", "set_figsize", "set_axes", "plot",
                          "Animator", "image_grid"),
    "d2l_shim.hub": ("DATA_HUB", "DATA_URL", "download", "download_extract"),
    "d2l_shim.fashion_mnist": ("get_fashion_mnist_labels", "load_fashion_mnist_arrays"),
    "d2l_shim.images": ("read_image_folder", "hold_out"),
    "d2l_shim.swd": ("sliced_wasserstein_distance",),
    "d2l_shim.profiles": ("profile_name",),
    "d2l_shim.training": ("check_finite_losses",),
}

PER_FRAMEWORK = {
    "num_gpus": "()",
    "try_gpu": "(i=0)",
    "numpy": "(x)",
    "show_images": "(imgs, num_rows, num_cols, titles=None, scale=1.5)",
    "count_parameters": "(net)",
    "set_seed": "(seed, epoch=None)",
    "save_checkpoint": "(path, net_D, net_G, trainer_D, trainer_G, history, seed)",
    "load_checkpoint": "(path, net_D, net_G, trainer_D, trainer_G, data_iter, seed)",
    "update_D": "(X, Z, net_D, net_G, loss, trainer_D)",
    "update_G": "(Z, net_D, net_G, loss, trainer_G)",
    "update_D_then_G": "(X, Z, net_D, net_G, loss, trainer_D, trainer_G)",
    "step_D_then_G": "(X, Z, net_D, net_G, loss, trainer_D, trainer_G)",
    "load_array": "(data_arrays, batch_size, is_train=True)",
    "load_data_fashion_mnist": "(batch_size, resize=None)",
    "sample_images": "(net_G, num_images, latent_dim)",
    "TrainingRun": ("(net_D, net_G, trainer_D, trainer_G, data_iter, held_out, "
                    "latent_dim, num_epochs, seed=0, checkpoint=None)"),
}

PUBLIC_NAMES = tuple(sorted(
    [name for names in SHARED.values() for name in names] + list(PER_FRAMEWORK)))

#: Names one framework module adds to the shared ones, for that framework alone.
FRAMEWORK_ONLY = {
    # nnx's convolutions, computed in the forms XLA's CPU backend runs fast.
    "jax": ("Conv", "ConvTranspose"),
}

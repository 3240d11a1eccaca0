"""The data sets the shim registers in its data hub: name -> (URL, sha1 of the file).

``hub.DATA_HUB`` starts as a copy of ``DATA_SETS``; chapters add their own
entries to it (``pokemon``, ...), as with d2l.
"""

import os
import pathlib

#: The folder of the data set shipped inside the package (see datasets/README.md).
#: Its file:// URL takes the same path as a remote archive: sha1 check, cache,
#: extraction.
EMBEDDED_DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'datasets')

# Fashion-MNIST (Zalando Research, MIT license), for the DCGAN chapter's
# exercise; read by d2l_shim.fashion_mnist.  The URLs are the ones listed in
# https://github.com/zalandoresearch/fashion-mnist#get-the-data (also used by
# torchvision).  Zalando and torchvision publish md5s only; these sha1s are
# the ones MXNet Gluon's FashionMNIST checks for its copies of the same four
# files, which it mirrors byte for byte.  MXNet's copies can serve as a
# mirror; set D2L_DATA_MIRRORS to
# https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/gluon/dataset/fashion-mnist
FASHION_MNIST_URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'

DATA_SETS = {
    'noto_emoji_64': (pathlib.Path(EMBEDDED_DATA_DIR, 'noto_emoji_64.zip').as_uri(),
                      'a49f94e861c8f80b24a82bc7c35d93229b14fa7c'),
    'fashion_mnist_train_images': (FASHION_MNIST_URL + 'train-images-idx3-ubyte.gz',
                                   '0cf37b0d40ed5169c6b3aba31069a9770ac9043d'),
    'fashion_mnist_train_labels': (FASHION_MNIST_URL + 'train-labels-idx1-ubyte.gz',
                                   '236021d52f1e40852b06a4c3008d8de8aef1e40b'),
    'fashion_mnist_test_images': (FASHION_MNIST_URL + 't10k-images-idx3-ubyte.gz',
                                  '626ed6a7c06dd17c0eec72fa3be1740f146a2863'),
    'fashion_mnist_test_labels': (FASHION_MNIST_URL + 't10k-labels-idx1-ubyte.gz',
                                  '17f9ab60e7257a1620f4ad76bbbaf857c3920701'),
}

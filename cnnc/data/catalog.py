"""The datasets cnnc knows: their four IDX files, class names, official addresses and checksums.

Checksums are the MD5s published for the gzipped files: Fashion-MNIST's README lists them, and
for MNIST they are the ones torchvision pins for the same files. Debian's dataset-fashion-mnist
package recompresses the files, so its .gz bytes differ from these; they are only used to check
downloads, and files found on disk are checked by their IDX structure instead.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataFile:
    role: str  # 'train_images' | 'train_labels' | 'test_images' | 'test_labels'
    name: str  # the official file name without .gz
    md5: str  # of the official .gz file

    @property
    def gz_name(self) -> str:
        return self.name + ".gz"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    title: str
    files: tuple[DataFile, ...]
    class_names: tuple[str, ...]
    mirrors: tuple[str, ...]  # base addresses tried in order; each holds the four .gz files
    system_dirs: tuple[str, ...] = ()  # where distribution packages install the files
    system_package: str | None = None  # the Debian package that provides them, if any

    def file(self, role: str) -> DataFile:
        return next(f for f in self.files if f.role == role)


# Fashion-MNIST was made as a drop-in replacement for MNIST: both use these file names.
MNIST_FILE_NAMES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def _mnist_files(**md5: str) -> tuple[DataFile, ...]:
    """The four files under MNIST's names, with the MD5 of each .gz given by role."""
    return tuple(DataFile(role, name, md5[role]) for role, name in MNIST_FILE_NAMES.items())


FASHION_MNIST = DatasetInfo(
    name="fashion_mnist",
    title="Fashion-MNIST",
    files=_mnist_files(
        train_images="8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        train_labels="25c81989df183df01b3e8a0aad5dffbe",
        test_images="bef4ecab320f06d8554ea6380940ec79",
        test_labels="bb300cfdad3c16e7a12a480ee83cd310",
    ),
    class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                 "Sneaker", "Bag", "Ankle boot"),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    system_dirs=("/usr/share/datasets/fashion-mnist",),
    system_package="dataset-fashion-mnist",
)

# Debian has no MNIST package (`apt-cache search mnist` finds only dataset-fashion-mnist).
MNIST = DatasetInfo(
    name="mnist",
    title="MNIST",
    files=_mnist_files(
        train_images="f68b3c2dcbeaaa9fbdd348bbdeb94873",
        train_labels="d53e105ee54ea40749a09fcbcd1e9432",
        test_images="9fb629c4189551a2d022fa330f9573f3",
        test_labels="ec29112dd5afa0611ce80d1b7f02629c",
    ),
    class_names=tuple(str(d) for d in range(10)),
    # Y. LeCun's page is the original home; the S3 copy is the mirror torchvision uses because
    # the original often refuses automated downloads. The MD5s decide what is accepted.
    mirrors=("https://yann.lecun.com/exdb/mnist/",
             "https://ossci-datasets.s3.amazonaws.com/mnist/"),
)

DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (FASHION_MNIST, MNIST)}


def dataset_info(name: str) -> DatasetInfo:
    from cnnc.errors import DataError, did_you_mean

    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'", hint=did_you_mean(name, DATASETS)
                        or f"cnnc knows {', '.join(DATASETS)}")
    return DATASETS[name]

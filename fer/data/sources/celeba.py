"""CelebA in the layout of the Kaggle dataset jessicali9530/celeba-dataset: the attributes task."""

ATTRIBUTES_FILE = "list_attr_celeba.csv"


def read_celeba(folder, shown_as: str, max_side: int):
    raise NotImplementedError

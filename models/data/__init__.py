"""Datasets: fetching, reading, histories, sessions."""

from models.data.catalogue import Catalogue, Item
from models.data.dataset import Dataset, split_sessions
from models.data.errors import ChecksumError, DataError, DataFormatError
from models.data.fetch import default_data_dir, ensure_ml100k
from models.data.readers import load_atomic, load_dataset, load_grouplens

__all__ = ["Catalogue", "Item", "Dataset", "split_sessions", "DataError", "DataFormatError",
           "ChecksumError", "default_data_dir", "ensure_ml100k", "load_atomic", "load_dataset",
           "load_grouplens"]

"""Order books: the pure L2 book, the per-subscription seam logic and checkpoints."""

from ssmd.books.book import Book, Checkpoint, CheckpointError
from ssmd.books.builder import BookBuilder, BookEvent, BookState

__all__ = ["Book", "BookBuilder", "BookEvent", "BookState", "Checkpoint", "CheckpointError"]

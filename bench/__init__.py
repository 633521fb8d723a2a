"""streamrec: bench."""

"""streamrec: offline."""

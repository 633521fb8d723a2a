"""streamrec: streamrec."""

"""streamrec: streams."""

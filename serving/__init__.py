"""streamrec: serving."""

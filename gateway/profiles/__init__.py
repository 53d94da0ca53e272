"""What a person sets about themselves: nickname and avatar (``updateProfile``, uploads)."""

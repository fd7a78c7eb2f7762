"""The people the data is about, their consent and their restrictions."""

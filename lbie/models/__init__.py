"""Models: the networks of the two papers and the text encoder."""

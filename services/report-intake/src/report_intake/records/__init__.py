"""Records: the audit chain, legal holds, retention, and a citizen's rights over the data kept about them."""

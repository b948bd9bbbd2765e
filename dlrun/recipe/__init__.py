"""One run as an object: setup, train, finish; shared by every entry point."""

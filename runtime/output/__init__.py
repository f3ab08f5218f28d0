"""Images on disk: run layout, PNG folders, array files, pictures, all-or-nothing files and locks."""

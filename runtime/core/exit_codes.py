"""The `vae-gen` command's exit statuses (besides 0, and 1 for a failed `selftest`)."""

#: Every user error, the same as argparse's usage errors; running out of memory too.
USER_ERROR = 2
#: After Ctrl-C or SIGTERM: 128 + SIGINT, as shells report it.
INTERRUPTED = 130
#: When the reader of our output closed the pipe: 128 + SIGPIPE, as `yes | head -1` gives.
CLOSED_PIPE = 141

"""The one exception type that means "the user asked for something we cannot do"."""


class CnnhubError(Exception):
    """Bad input from the user: the CLI prints the message on one line and exits with status 2.

    The message names what is wrong and what to do about it, Keras style:
    ``"`pooling` must be one of avg, max, flatten. Received: pooling=mean"``.
    """

"""The one exception type that means "the user asked for something we cannot do"."""


class CnnhubError(Exception):
    """Bad input from the user: the CLI prints the message on one line and exits with status 2.

    The message names what is wrong and what to do about it, Keras style:
    ``"`pooling` must be one of avg, max, flatten. Received: pooling=mean"``.

    The message is stored escaped (:func:`cnnhub.display.printable`): it often quotes class
    or file names, which must not reach the terminal as control sequences or break the line.
    """

    def __init__(self, message: object = "", *args: object) -> None:
        from cnnhub.display import printable  # lazy: heavy import, kept off the --help path

        super().__init__(printable(" ".join(str(message).split())), *args)

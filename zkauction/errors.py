"""The base of every error a user can cause: a bad config, a missing file, a tampered proof, a run
that does not fit the command. Below every layer, so it imports nothing.

The command line catches :class:`ZkAuctionError` in one place (:mod:`zkauction.cli`) and prints its
message as one line, ``error: <message>``, then exits with :attr:`ZkAuctionError.exit_code`; any
other exception is a bug and keeps its traceback. The message is therefore the whole report: it
names the file, field, round or bidder and says what was expected.
"""


class ZkAuctionError(Exception):
    """An error the user caused and can fix; ``str(error)`` is the one line to show.

    ``exit_code`` is what the command line exits with: 2 (bad input, the default); a subclass for
    a failed check (a proof that does not verify) sets 1.
    """

    exit_code: int = 2

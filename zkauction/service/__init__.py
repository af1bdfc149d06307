"""The protocol's parties on the network: the auctioneer as an HTTP service (:mod:`.server`, over
:mod:`.engine`), the bidder client (:mod:`.client`), the monitor anyone can run (:mod:`.monitor`) and
the HTTP view of a remote log that clients check (:mod:`.remote`).

Layering: ``service`` sits above ``protocol`` (it runs the same :class:`~zkauction.protocol.bidder.Bidder`,
:class:`~zkauction.protocol.auctioneer.Auctioneer` and checks over HTTP) and below ``cli``.
"""

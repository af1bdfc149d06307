"""The repeated-auction protocol (the paper's Algorithm 1) between separate parties: the signed log,
the roles (auctioneer, bidders, auditor, trusted third party), the audit draw and its checks, the
credibility penalty (section 4.1, appendix A.2) and the simulated local run. May use
:mod:`zkauction.zk` and :mod:`zkauction.learn`; reading and verifying the log never imports torch."""

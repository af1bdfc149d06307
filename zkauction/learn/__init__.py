"""Learning optimal auctions (the paper's section 3 and 5): settings and stationary participation,
the tweaked data, regret nets and affine maximizers, misreport attacks, training, evaluation with
appendix A.3's bounds, analytic baselines and checkpoints. Uses PyTorch; imports neither
:mod:`zkauction.zk` nor :mod:`zkauction.protocol`."""

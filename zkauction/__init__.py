"""zkauction: credible, sealed-bid, revenue-optimal repeated auctions.

Learned auctions (regret nets, affine maximizers) under stationary participation, ezkl zk proofs of
their outcomes, and the paper's repeated-auction protocol (Algorithm 1).
"""

from zkauction.checkpoint import load_auction
from zkauction.nets import AuctionNet, RegretNet
from zkauction.setting import AuctionSetting, ParticipationModel, SettingError

__all__ = ["AuctionNet", "AuctionSetting", "ParticipationModel", "RegretNet", "SettingError", "load_auction"]
__version__ = "0.1.0"

import math

import pytest
import torch
from scipy import stats

from zkauction.learn.config import ConfigError, config_from_dict
from zkauction.learn.data import sample_tweaked
from zkauction.learn.nets import RegretNet
from zkauction.learn.setting import AuctionSetting, ParticipationModel, SettingError


def test_independent_participation_matches_paper_tables():
    # docs/reference.md: the 2x2 scenario tables are independent participation with (0.2, 0.8) etc.
    s1 = ParticipationModel.independent([0.2, 0.8])
    assert s1.profile_strings() == ["11", "10", "01", "00"]
    assert [round(q, 4) for q in s1.probabilities] == [0.16, 0.04, 0.64, 0.16]
    s3 = ParticipationModel.independent([0.7, 0.7, 0.9])
    assert s3.profile_strings() == ["111", "011", "101", "110", "100", "010", "001", "000"]
    assert [round(q, 3) for q in s3.probabilities] == [0.441, 0.189, 0.189, 0.049, 0.021, 0.021, 0.081, 0.009]


@pytest.mark.parametrize(
    "profiles, probs, message",
    [
        (["11", "10"], [0.5, 0.4], "sum to"),
        (["11", "1"], [0.5, 0.5], "length"),
        (["11", "10"], [0.5], "probabilities"),
        (["1x"], [1.0], "0s and 1s"),
        (["11", "11"], [0.5, 0.5], "twice"),
        (["11", "10"], [1.5, -0.5], r"not in \[0, 1\]"),
    ],
)
def test_invalid_participation_is_rejected(profiles, probs, message):
    with pytest.raises(SettingError, match=message):
        ParticipationModel(tuple(profiles), tuple(probs))


@pytest.mark.parametrize(
    "support, message",
    [([1.0, 1.0], "empty support"), ([2.0, 1.0], "empty support"), ([-1.0, 1.0], "non-negative"), ([[0, 1]] * 3, "one pair")],
)
def test_invalid_support_is_rejected(support, message):
    with pytest.raises(SettingError, match=message):
        AuctionSetting(2, 2, support)


def test_asymmetric_support():
    s = AuctionSetting(1, 2, [[4, 16], [4, 7]])
    v = s.sample_values(20000, torch.Generator().manual_seed(0))
    assert v[..., 0].min() >= 4 and v[..., 0].max() <= 16
    assert v[..., 1].min() >= 4 and v[..., 1].max() <= 7
    assert abs(v[..., 0].mean().item() - 10) < 0.1


def test_check_bids_names_the_problem():
    s = AuctionSetting(2, 2)
    s.check_bids(torch.tensor([[[0.5, 0.5], [0.0, 0.0]]]))  # absent bidder 1 is fine
    with pytest.raises(SettingError, match="shape"):
        s.check_bids(torch.zeros(1, 3, 2))
    with pytest.raises(SettingError, match="not finite"):
        s.check_bids(torch.tensor([[[0.5, float("nan")], [0.1, 0.1]]]))
    with pytest.raises(SettingError, match="bidder 1 for item 0.*outside"):
        s.check_bids(torch.tensor([[[0.5, 0.5], [1.5, 0.1]]]))


def test_config_participation_length_mismatch():
    with pytest.raises(ConfigError, match="length 3"):
        config_from_dict({"setting": {"n_bidders": 2, "n_items": 2}, "participation": {"independent": [0.5, 0.5, 0.5]}})


def test_tweaked_profile_frequencies_match_q():
    # Chi-square goodness of fit: frequencies of sampled profiles against Q.
    s = AuctionSetting(2, 2)
    p = ParticipationModel.independent([0.7, 0.9])
    data = sample_tweaked(s, p, 50_000, seed=1)
    counts = torch.bincount(data.profile_index, minlength=4).numpy()
    expected = [q * len(data) for q in p.probabilities]
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    # Rows of absent bidders are exactly zero, present rows are in the support.
    mask = p.mask_tensor()[data.profile_index]
    assert torch.all(data.values[mask == 0] == 0)
    assert torch.all(data.values.sum(-1)[mask == 1] > 0)


def test_tweaked_data_is_reproducible():
    s, p = AuctionSetting(3, 10), ParticipationModel.independent([0.5, 0.5, 0.7])
    a, b = sample_tweaked(s, p, 100, seed=7), sample_tweaked(s, p, 100, seed=7)
    assert torch.equal(a.values, b.values)
    assert not torch.equal(a.values, sample_tweaked(s, p, 100, seed=8).values)


@pytest.mark.parametrize("n,m", [(1, 2), (2, 2), (3, 10)])
def test_untrained_regret_net_contract(n, m):
    s = AuctionSetting(n, m)
    p = ParticipationModel.independent([0.6] * n)
    net = RegretNet(s, p, depth=2, width=16)
    data = sample_tweaked(s, p, 2000, seed=0)
    with torch.no_grad():
        alloc, pay = net(data.values)
    assert alloc.shape == (2000, n, m) and pay.shape == (2000, n)
    assert torch.all(alloc >= 0) and torch.all(alloc.sum(1) <= 1 + 1e-6)  # feasibility
    assert torch.all(pay >= 0)
    assert torch.all(pay <= (alloc * data.values).sum(-1) + 1e-6)  # individual rationality
    absent = data.values.abs().sum(-1) == 0
    assert torch.all(alloc[absent] == 0) and torch.all(pay[absent] == 0)


def test_absurd_sizes_are_refused_before_anything_is_allocated():
    import time

    from zkauction.learn.data import check_sample_size, sample_tweaked

    t = time.monotonic()
    with pytest.raises(SettingError, match="too large"):
        AuctionSetting.from_dict({"n_bidders": 10**9, "n_items": 2})
    with pytest.raises(SettingError, match="2\\^40 profiles"):
        ParticipationModel.independent([0.5] * 40)
    with pytest.raises(SettingError, match="positive integer"):
        AuctionSetting.from_dict({"n_bidders": "two", "n_items": 2})
    big = AuctionSetting(1000, 100)
    with pytest.raises(SettingError, match="GiB"):
        check_sample_size(big, 100_000, "evaluation")
    with pytest.raises(SettingError, match="tweaked dataset"):
        sample_tweaked(big, ParticipationModel.fixed(1000), 200_000, seed=0)
    assert time.monotonic() - t < 5

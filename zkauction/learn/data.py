"""The tweaked dataset (paper, section 5.1): sample a participation profile from Q, sample values,
mask absent bidders' rows to zero. Seeded and reproducible."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zkauction.learn.setting import AuctionSetting, ParticipationModel, SettingError

# The largest block of value profiles drawn at once (float32). Far above every experiment here
# (200,000 frames of 3x10 are 24 MB); a config with absurd sizes is refused before allocating.
MAX_SAMPLE_BYTES = 2 * 1024**3


def check_sample_size(setting: AuctionSetting, k: int, what: str = "sample") -> None:
    """Raise :class:`SettingError` if ``k`` profiles of ``setting`` would exceed
    :data:`MAX_SAMPLE_BYTES`, naming ``what`` asked for them."""
    need = 4 * int(k) * setting.n * setting.m
    if need > MAX_SAMPLE_BYTES:
        raise SettingError(
            f"{what}: {k:,} value profiles of {setting.n:,} bidders x {setting.m:,} items would take "
            f"{need / 1024**3:,.1f} GiB at once (limit {MAX_SAMPLE_BYTES / 1024**3:.0f} GiB); use fewer profiles "
            "or a smaller setting"
        )


@dataclass(frozen=True)
class TweakedData:
    """K frames of bids [K, n, m] and the index into ``participation.profiles`` of each frame."""

    values: torch.Tensor
    profile_index: torch.Tensor
    setting: AuctionSetting
    participation: ParticipationModel

    def __len__(self) -> int:
        return self.values.shape[0]

    def of_profile(self, index: int) -> torch.Tensor:
        """The frames whose participation profile is ``participation.profiles[index]``."""
        return self.values[self.profile_index == index]


def sample_tweaked(
    setting: AuctionSetting,
    participation: ParticipationModel,
    k: int,
    seed: int,
) -> TweakedData:
    """K tweaked frames: profile g ~ Q, values v ~ F, frame = v * g broadcast over items."""
    if participation.n != setting.n:
        raise SettingError(
            f"participation profiles have length {participation.n}, the setting has {setting.n} bidders"
        )
    if k < 1:
        raise SettingError(f"dataset size must be positive, got {k}")
    check_sample_size(setting, k, "tweaked dataset")
    gen = torch.Generator().manual_seed(int(seed))
    q = torch.tensor(participation.probabilities, dtype=torch.float64)
    index = torch.multinomial(q, k, replacement=True, generator=gen)
    values = setting.sample_values(k, generator=gen)
    mask = participation.mask_tensor()[index]  # [k, n]
    return TweakedData(values * mask[:, :, None], index, setting, participation)


def sample_profile(
    setting: AuctionSetting, profile: tuple[int, ...], k: int, seed: int
) -> torch.Tensor:
    """K frames [K, n, m] with a fixed participation profile (for per-profile evaluation)."""
    check_sample_size(setting, k, f"profile {''.join(str(int(x)) for x in profile)}")
    gen = torch.Generator().manual_seed(int(seed))
    mask = torch.tensor(profile, dtype=torch.float32)
    return setting.sample_values(k, generator=gen) * mask[None, :, None]

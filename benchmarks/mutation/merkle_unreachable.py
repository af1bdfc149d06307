"""Why merkle.py:171, 180, 217, 226 survive (fourth run): with a proof of exactly the length that
verify_inclusion / verify_consistency require, the private functions' "too long"/"too short" guards
never fire. Replays their index arithmetic for every size up to 199; prints 0.
Usage: python benchmarks/mutation/merkle_unreachable.py"""

from zkauction.protocol import merkle as M
bad = 0
for size in range(1, 200):
    for idx in range(size):
        want = M._inclusion_proof_length(idx, size)
        fn, sn, hits = idx, size - 1, 0
        for _ in range(want):
            if sn == 0: bad += 1
            if fn & 1 or fn == sn:
                while not fn & 1 and fn != 0: fn, sn = fn >> 1, sn >> 1
            fn, sn = fn >> 1, sn >> 1
        if sn != 0: bad += 1
    for old in range(1, size):
        want = M._consistency_proof_length(old, size)
        path_len = want + (1 if old & (old - 1) == 0 else 0)
        fn, sn = old - 1, size - 1
        while fn & 1: fn, sn = fn >> 1, sn >> 1
        for _ in range(path_len - 1):
            if sn == 0: bad += 1
            if fn & 1 or fn == sn:
                while not fn & 1 and fn != 0: fn, sn = fn >> 1, sn >> 1
            fn, sn = fn >> 1, sn >> 1
        if sn != 0: bad += 1
print("guard firings with exact-length proofs, sizes 1..199:", bad)

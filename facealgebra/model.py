"""The MMD Variational Ladder Autoencoder.

Sources:
- S. Zhao, J. Song, S. Ermon. "Learning Hierarchical Features from Generative Models" (VLAE), ICML 2017.
- S. Zhao, J. Song, S. Ermon. "InfoVAE: Balancing Learning and Inference in Variational Autoencoders", AAAI 2019
  (the MMD regulariser that replaces the KL term, here applied to every ladder layer separately).

Encoder (a ladder of L stages, shallow to deep):
    h_0 = x,    h_l = f_l(h_{l-1}),    q(z_l | x) = N(mu_l(h_l), sigma_l(h_l)^2)   (reg="kl")
                                       z_l = mu_l(h_l)                            (reg="mmd", see VLAE.draw)
so z_1 is read off a shallow network (low-level features) and z_L off the deepest one (high-level features).

Decoder (the same ladder, top down):
    z~_L = u_L(z_L),    z~_l = u_l([z~_{l+1}, v_l(z_l)]),    x^ = g(z~_1)
where [.,.] is channel concatenation and v_l maps z_l to a small feature map at stage l's resolution.

A model may have more stages than latent layers (ModelConfig.stages): the latent layers then sit on the deepest
stages, and the shallower stages only pass h (encoder) and z~ (decoder) along; with one latent layer that is a
flat VAE as deep as the ladder. The heads mu_l, sigma_l either add stride-2 convs of their own ("conv", so z_l's
depth is its stage's plus the head's) or average-pool the stage ("direct", so the depth is exactly the stage's).

Every stage f_l halves the resolution until it reaches 4x4; deeper stages keep 4x4. The decoder upsamples to the
exact sizes the encoder saw, so any image size works (28 for MNIST, 64 for faces).

Two decoder layouts (ModelConfig.arch), the same ladder: "ladder-1" upsamples z~_{l+1} and then changes its
channels with a 3x3 conv (the lift), and draws x^ with two 3x3 convs at the image's full resolution; "ladder-2"
lifts z~_{l+1} at its own, coarser resolution before upsampling, and draws x^ at stage 1's resolution with 4x the
output channels, pixel-shuffled up to full size. On faces64-small that is 186 against 258 MFLOP a forward pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from facealgebra.config import ModelConfig

MIN_RESOLUTION = 4
HEAD_RESOLUTION = 8  # latent heads shrink their stage's feature map to at most this before the linear layer
INJECT_RESOLUTION = 8  # v_l draws z_l's feature map at most this large, then upsamples it


def stage_resolutions(cfg: ModelConfig) -> list[int]:
    """Spatial size of h_1 ... h_S, one per stage."""
    sizes, size = [], cfg.image_size
    for _ in range(cfg.num_stages):
        if size > MIN_RESOLUTION:
            size = (size + 1) // 2
        sizes.append(size)
    return sizes


def reparameterise(params: list[tuple[torch.Tensor, torch.Tensor]],
                   noise: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
    """z_l = mu_l + sigma_l * eps, eps ~ N(0, I): fresh draws, or the given `noise` (one eps per layer)."""
    if noise is None:
        noise = [torch.randn_like(mu) for mu, _ in params]
    return [mu + eps.to(mu.dtype) * log_sigma.exp() for (mu, log_sigma), eps in zip(params, noise)]


def conv_block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """Two 3x3 convs. GroupNorm keeps the signal alive through the ~20 layers from z_L to the pixels: without
    it the decoder's output starts out independent of z, settles on the mean image, and never leaves it."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),  # stride 2 gives ceil(size / 2)
        nn.GroupNorm(num_groups(c_out), c_out),
        nn.SiLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.GroupNorm(num_groups(c_out), c_out),
        nn.SiLU(),
    )


def num_groups(channels: int) -> int:
    """Up to 8 channels a group (GroupNorm needs the group count to divide the channels)."""
    return next(g for g in range(min(8, channels), 0, -1) if channels % g == 0)


class LatentHead(nn.Module):
    """h_l -> (mu_l, log sigma_l): the stage's feature map shrunk to at most HEAD_RESOLUTION, then one linear layer.
    "conv" heads shrink it with stride-2 convs of their own, which add depth; "direct" heads average-pool it, so
    the code is read off the stage itself."""

    def __init__(self, channels: int, resolution: int, latent_dim: int, kind: str = "conv"):
        super().__init__()
        layers: list[nn.Module] = []
        if kind == "direct" and resolution > HEAD_RESOLUTION:
            layers.append(nn.AdaptiveAvgPool2d(HEAD_RESOLUTION))
            resolution = HEAD_RESOLUTION
        while resolution > HEAD_RESOLUTION:
            layers += [nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.SiLU()]
            resolution = (resolution + 1) // 2
        self.reduce = nn.Sequential(*layers)
        self.linear = nn.Linear(channels * resolution * resolution, 2 * latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.linear(self.reduce(h).flatten(1)).chunk(2, dim=1)
        return mu, log_sigma.clamp(-10.0, 5.0)


class LatentInjection(nn.Module):
    """v_l: z_l -> a feature map at stage l's resolution, to concatenate with the decoder state."""

    def __init__(self, latent_dim: int, channels: int, resolution: int):
        super().__init__()
        self.small = min(resolution, INJECT_RESOLUTION)
        self.channels, self.resolution = channels, resolution
        self.linear = nn.Linear(latent_dim, channels * self.small * self.small)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        feature_map = F.silu(self.linear(z)).view(-1, self.channels, self.small, self.small)
        if self.small != self.resolution:
            feature_map = F.interpolate(feature_map, size=self.resolution, mode="nearest")
        return feature_map


class VLAE(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.resolutions = stage_resolutions(cfg)
        widths = [cfg.stage_width(stage) for stage in range(1, cfg.num_stages + 1)]
        in_widths = [cfg.channels] + widths[:-1]
        in_sizes = [cfg.image_size] + self.resolutions[:-1]
        # the stage each latent layer is read off and injected at: the deepest num_layers stages
        self.latent_stages = list(range(cfg.num_stages - cfg.num_layers, cfg.num_stages))
        latent_widths = [widths[stage] for stage in self.latent_stages]
        latent_sizes = [self.resolutions[stage] for stage in self.latent_stages]

        # encoder ladder: f_l and the heads mu_l, sigma_l
        self.stages = nn.ModuleList(
            conv_block(c_in, c_out, 2 if r_out < r_in else 1)
            for c_in, c_out, r_in, r_out in zip(in_widths, widths, in_sizes, self.resolutions)
        )
        self.heads = nn.ModuleList(
            LatentHead(w, r, d, cfg.heads) for w, r, d in zip(latent_widths, latent_sizes, cfg.latent_dims)
        )

        # decoder ladder: v_l injects z_l; u_l combines it with the state from the stage above
        self.injections = nn.ModuleList(
            LatentInjection(d, w, r) for d, w, r in zip(cfg.latent_dims, latent_widths, latent_sizes)
        )
        top = cfg.num_stages - 1
        self.combines = nn.ModuleList(
            conv_block(2 * w if stage != top and stage in self.latent_stages else w, w, 1)
            for stage, w in enumerate(widths)
        )
        self.lifts = nn.ModuleList(  # channel change of z~_{l+1}, after (ladder-1) or before upsampling it
            nn.Conv2d(widths[stage + 1], widths[stage], 3, padding=1) for stage in range(top)
        )
        self.shuffle = 2 if cfg.arch == "ladder-2" and self.resolutions[0] < cfg.image_size else 1
        self.to_image = nn.Sequential(
            nn.Conv2d(widths[0], widths[0], 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(widths[0], cfg.channels * self.shuffle ** 2, 3, padding=1),
        )

    # ---- encoder -----------------------------------------------------------------------------------------------
    def posterior(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(mu_l, log sigma_l) for every layer, shallow first. x is in [0, 1], shape (N, C, H, W)."""
        h = x * 2.0 - 1.0
        params = []
        first = self.latent_stages[0]
        for index, stage in enumerate(self.stages):
            h = stage(h)
            if index >= first:
                params.append(self.heads[index - first](h))
        return params

    def encode(self, x: torch.Tensor, sample: bool = False) -> list[torch.Tensor]:
        """Per-layer latents z_1 ... z_L: the posterior means, or reparameterised samples when `sample`."""
        params = self.posterior(x)
        return self.draw(params) if sample else [mu for mu, _ in params]

    def draw(self, params: list[tuple[torch.Tensor, torch.Tensor]],
             noise: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """z_l ~ q(z_l | x): reparameterised samples for reg="kl"; for reg="mmd" the means themselves.

        The MMD-VLAE's encoder is deterministic, as in InfoVAE's MMD-VAE. With a noisy encoder a layer can match
        N(0, I) by carrying nothing (mu = 0, sigma = 1), and it did: a toyfaces run kept z1 and z2 at sigma = 1
        for 2700 steps and never drew eyes or mouths. A deterministic layer can only match the prior by spreading
        its codes over N(0, I), so every layer carries information from the first steps (all 40 dims active
        after 250 steps). The sigma head is then unused, kept so that both regularisers share one file format.
        """
        return [mu for mu, _ in params] if self.cfg.reg == "mmd" else reparameterise(params, noise)

    # ---- decoder -----------------------------------------------------------------------------------------------
    def decode(self, layer_latents: list[torch.Tensor]) -> torch.Tensor:
        """Images in [0, 1] from per-layer latents z_1 ... z_L (shallow first)."""
        if len(layer_latents) != self.cfg.num_layers:
            raise ValueError(f"expected {self.cfg.num_layers} latent layers, got {len(layer_latents)}")
        first, top = self.latent_stages[0], self.cfg.num_stages - 1
        state = self.combines[top](self.injections[-1](layer_latents[-1]))
        lift_first = self.cfg.arch == "ladder-2"
        for stage in range(top - 1, -1, -1):
            lift, size = self.lifts[stage], self.resolutions[stage]
            state = (F.interpolate(lift(state), size=size, mode="nearest") if lift_first else
                     lift(F.interpolate(state, size=size, mode="nearest")))
            if stage >= first:
                state = torch.cat([state, self.injections[stage - first](layer_latents[stage - first])], dim=1)
            state = self.combines[stage](state)
        if self.shuffle == 1:
            return torch.sigmoid(self.to_image(F.interpolate(state, size=self.cfg.image_size, mode="nearest")))
        image = F.pixel_shuffle(self.to_image(state), self.shuffle)
        if image.shape[-1] != self.cfg.image_size:  # an odd image size: stage 1 was rounded up
            image = F.interpolate(image, size=self.cfg.image_size, mode="nearest")
        return torch.sigmoid(image)

    def sample(self, n: int, seed: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        """n new images decoded from prior draws z_l ~ N(0, I)."""
        return self.decode(self.prior_latents(n, seed, device))

    def prior_latents(
        self, n: int, seed: int | None = None, device: torch.device | str | None = None
    ) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        device = device or next(self.parameters()).device
        return [torch.randn(n, d, generator=generator).to(device) for d in self.cfg.latent_dims]

    def forward(self, x: torch.Tensor, noise: list[torch.Tensor] | None = None, gates: list[float] | None = None
                ) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]], list[torch.Tensor]]:
        """One training pass: reconstruction from sampled latents, the posterior parameters and the samples.
        `noise` fixes the reparameterisation's eps (training on several processes draws it for the whole batch).
        `gates` scales each layer's latents before decoding (progressive training fades layers in with it)."""
        params = self.posterior(x)
        samples = self.draw(params, noise)
        decoded = samples if gates is None else [z * gate for z, gate in zip(samples, gates)]
        return self.decode(decoded), params, samples

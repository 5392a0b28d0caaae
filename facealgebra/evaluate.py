"""Metrics for a trained VLAE: reconstruction, per-layer information, label probes and arithmetic accuracy.

Sources:
- MIG: R. T. Q. Chen, X. Li, R. Grosse, D. Duvenaud. "Isolating Sources of Disentanglement in Variational
  Autoencoders", NeurIPS 2018. MI is the plug-in estimate on 20 equal-width bins per latent dim, as in
  F. Locatello et al., "Challenging Common Assumptions in the Unsupervised Learning of Disentangled
  Representations", ICML 2019 (disentanglement_lib).
- MMD: the unbiased estimator of `losses.mmd` (Gretton et al. 2012).
- Arithmetic: the latent arithmetic of the VLAE / MMD-VLAE papers, scored against the toyfaces renderer.

Definitions (latents are posterior means unless said otherwise; layers are numbered z1 shallow ... zL deep):
- Reconstruction: decode(encode(x)) against x, values in [0, 1], on the data given: it is held out when that data
  is a split the model did not train on (mnist?split=test). MSE per pixel value; PSNR = 10 log10(1 / MSE) per
  image, averaged over images (MSE floored at 1e-10, so a perfect match scores 100 dB).
- MMD per layer: MMD^2 between posterior samples z_l ~ q(z_l | x) of MMD_IMAGES images and as many prior draws.
- Active dims: dims whose posterior mean varies over the data with variance above ACTIVE_VARIANCE.
- Normalised MI of dim j and factor k: I(z_j; v_k) / H(v_k). 0: no information; 1: z_j determines v_k.
- Layer MI of layer l and factor k: the LARGEST normalised MI among layer l's dims. Not the MI of the layer's
  joint code: a 10-dim layer at 20 bins a dim has 20^10 cells and the plug-in estimate would be all bias. The
  max understates a factor that a layer spreads over several dims; the probes (which see the whole layer)
  complement it.
- MIG: per factor, the gap between the two largest normalised MIs over all latent dims, averaged over factors.
  A secondary figure: MMD against N(0, I) is unchanged by rotating a layer's code, and the decoder absorbs any
  rotation, so nothing asks a factor to line up with one dim; the paper's claim is about layers (below).
- Layer-level information of layer l about label k: the PROBE_FOLDS-fold cross-validated accuracy of a
  NEIGHBOURS-nearest-neighbour vote on layer l's whole code, rescaled so that chance (the majority label) is 0 and
  every image right is 1 (clipped at 0); the raw accuracies are kept beside it. It sees the whole code,
  nonlinearly, and is unchanged by rotating it.
  Share: the best layer's information over the sum over layers (1: one layer holds the label alone; 1/L: every
  layer alike). Layer gap: the best layer's information minus the runner-up's. Redundancy: the other layers'
  information over the best layer's (0: nowhere else; L - 1: every layer holds all of it). A label that no layer
  reads at INFORMATION_FLOOR or more has no share, gap or redundancy (a share of near-nothing is noise); the
  means are over the labels read, and "labels_read" counts them.
- Holding layer of a factor: the layer with the largest layer-level information (above); the MI table names the
  layer with the largest layer MI, which can differ when a layer spreads the factor over several dims.
- Probe: multinomial logistic regression on one layer's standardised latents, scored by stratified
  PROBE_FOLDS-fold cross-validation: every image is predicted once, by a probe fit on the other folds. Chance:
  the same, always answering the fit folds' most common label.
- Factor reconstruction (toyfaces): for each factor f, faces with random factors; each is reconstructed,
  decode(encode(x)), and compared (MSE) with the renderings of that face at every value of f, the other factors
  kept. "accuracy": how often the nearest rendering has the face's true value of f: 1 when the reconstruction
  draws f right, about "chance" (1 / the number of values) when it draws the same thing whatever f is. It asks
  of the pictures what the probes ask of the latents: is the factor there.
- Arithmetic (toyfaces): triples where a and b differ in factor f only, c is random but has b's value of f; the
  truth d is c with a's value of f, drawn by the renderer. "psnr": PSNR(decode(z_a - z_b + z_c), d), every
  layer edited; "psnr_layer": only the layer holding f edited, the other layers z_c's. Two references:
  "psnr_unedited" = PSNR(decode(z_c), d) (doing nothing) and "psnr_reconstruction" = PSNR(decode(z_d), d).
  "accuracy" / "accuracy_layer": how often the edit (every layer / that layer) is nearest (MSE) to d among the
  renderings of d at every value of f, i.e. how often it draws f's new value; "chance" is 1 / the number of values.
  PSNR blends every pixel, so a factor of a few pixels (the toyfaces mouth) moves it little; accuracy asks of the
  factor alone whether the edit made it. Doing nothing scores 0, as c has b's value, not a's.

Everything random (image subset, posterior noise, prior draws, probe splits, triples) follows one seed, so a run
with the same seed repeats to the last digit. Between seeds the figures move by their sampling error (measured
on a toyfaces32 model and 5,000 images): MI and MIG not at all when every image is used, MMD^2 (2,000 samples)
by about 0.001, probe accuracies by at most about 0.01, arithmetic means (300 triples a factor) by up to 0.2 dB.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from facealgebra.checkpoint import LoadedModel
from facealgebra.data import ImageSet, parse_spec
from facealgebra.errors import FaceAlgebraError
from facealgebra.images import save_image
from facealgebra.losses import mmd_to_prior
from facealgebra.progress import CountProgress
from facealgebra.refine import reconstructions, refined

EVAL_IMAGES = 10_000  # at most this many images (a seeded random subset) are encoded
MMD_IMAGES = 2_000
ACTIVE_VARIANCE = 0.01
MI_BINS = 20
PROBE_FOLDS = 4
PROBE_L2 = 1e-3
PROBE_ITERATIONS = 200
NEIGHBOURS = 5  # the layer-level probe: a 5-nearest-neighbour vote
INFORMATION_FLOOR = 0.1  # a label that no layer reads at this or more is "not read": its share would be noise
ARITHMETIC_TRIPLES = 300  # per factor
RECONSTRUCTED_FACES = 250  # per factor
BATCH_SIZE = 250
MSE_FLOOR = 1e-10

Encoder = Callable[[torch.Tensor], list[torch.Tensor]]  # images in [0, 1] -> per-layer latents
Decoder = Callable[[list[torch.Tensor]], torch.Tensor]  # per-layer latents -> images in [0, 1]
Renderer = Callable[[dict[str, int], int, int], np.ndarray]  # (factors, size, channels) -> uint8 (C, size, size)


# ---- reconstruction and per-layer statistics -------------------------------------------------------------------
def psnr(mse: np.ndarray) -> np.ndarray:
    """Peak signal-to-noise ratio in dB for values in [0, 1]."""
    return 10.0 * np.log10(1.0 / np.maximum(mse, MSE_FLOOR))


def image_mse(estimate: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    """Per-image mean squared error, (N,)."""
    return (estimate.float() - truth.float()).pow(2).flatten(1).mean(1).cpu().double().numpy()


def to_unit(images: np.ndarray, device: torch.device | str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).to(device).float().div_(255.0)


@torch.no_grad()
def encode_images(loaded: LoadedModel, images: np.ndarray, device: torch.device | str,
                  progress: CountProgress) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray, np.ndarray]:
    """Per-layer posterior means and posterior samples, and per-image reconstruction MSE from the means (refined
    by the model's refine_steps: the codes encode gives), drawn by the decoder tuned to each image (the model's
    tune_steps) and by the model as trained."""
    means: list[list[np.ndarray]] = [[] for _ in loaded.model.cfg.latent_dims]
    samples: list[list[np.ndarray]] = [[] for _ in loaded.model.cfg.latent_dims]
    errors, untuned = [], []
    for start in range(0, len(images), BATCH_SIZE):
        x = to_unit(images[start:start + BATCH_SIZE], device)
        params = loaded.model.posterior(x)
        layer_means = [mu for mu, _ in params]
        for layer, (mu, draw) in enumerate(zip(layer_means, loaded.model.draw(params))):
            means[layer].append(mu.double().cpu().numpy())
            samples[layer].append(draw.float().cpu().numpy())
        codes = refined(loaded.model, x, layer_means, loaded.refine_steps)
        untuned.append(image_mse(loaded.model.decode(codes), x))
        errors.append(image_mse(reconstructions(loaded.model, x, codes, loaded.tune_steps), x)
                      if loaded.tune_steps else untuned[-1])
        progress.advance()
    return ([np.concatenate(m) for m in means], [np.concatenate(s) for s in samples], np.concatenate(errors),
            np.concatenate(untuned))


def layer_statistics(means: list[np.ndarray], samples: list[np.ndarray]) -> list[dict]:
    """Per layer: MMD^2 of the posterior samples to N(0, I), and the number of active dims; both None (not
    measurable) on one image, where MMD's estimator divides by zero and every variance is 0."""
    measurable = len(means[0]) >= 2
    return [
        {
            "layer": index + 1,
            "dims": int(layer_means.shape[1]),
            "mmd": float(mmd_to_prior(torch.from_numpy(layer_samples[:MMD_IMAGES]))) if measurable else None,
            "active_dims": int((layer_means.var(axis=0) > ACTIVE_VARIANCE).sum()) if measurable else None,
        }
        for index, (layer_means, layer_samples) in enumerate(zip(means, samples))
    ]


def probed(values: np.ndarray, seed: int) -> bool:
    """Whether a label can be probed: two values or more, and folds that leave every fit set two images or more
    (3 images of 3 values all sit in one fold, leaving nothing to fit)."""
    fold = stratified_folds(values, PROBE_FOLDS, seed)
    return len(np.unique(values)) > 1 and all((fold != k).sum() >= 2 for k in np.unique(fold))


# ---- mutual information and MIG --------------------------------------------------------------------------------
def discretise(values: np.ndarray, bins: int = MI_BINS) -> np.ndarray:
    """(N, D) reals -> (N, D) bin indices, `bins` equal-width bins between each column's min and max."""
    low, high = values.min(axis=0), values.max(axis=0)
    width = np.where(high > low, (high - low) / bins, 1.0)
    return np.clip(((values - low) / width).astype(np.int64), 0, bins - 1)


def entropy(codes: np.ndarray) -> float:
    """Plug-in entropy (nats) of non-negative integer codes."""
    probabilities = np.bincount(codes) / len(codes)
    probabilities = probabilities[probabilities > 0]
    return float(-(probabilities * np.log(probabilities)).sum())


def mutual_information(a: np.ndarray, b: np.ndarray) -> float:
    """Plug-in I(a; b) in nats of two non-negative integer codes: H(a) + H(b) - H(a, b)."""
    return entropy(a) + entropy(b) - entropy(a * (int(b.max()) + 1) + b)


def normalised_mi(latents: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) matrix of I(z_j; v_k) / H(v_k) for latents (N, D) and integer factors (N, K)."""
    codes = discretise(latents)
    matrix = np.zeros((latents.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        values = np.unique(factors[:, k], return_inverse=True)[1].ravel()
        factor_entropy = entropy(values)
        if factor_entropy > 0:
            matrix[:, k] = [mutual_information(codes[:, j], values) / factor_entropy for j in range(codes.shape[1])]
    return matrix


def mig(dim_factor_mi: np.ndarray) -> float:
    """Mutual information gap (Chen et al. 2018) from a (D, K) normalised-MI matrix."""
    ranked = np.sort(dim_factor_mi, axis=0)[::-1]
    runner_up = ranked[1] if len(ranked) > 1 else np.zeros(ranked.shape[1])
    return float((ranked[0] - runner_up).mean())


def layer_mi(dim_factor_mi: np.ndarray, latent_dims: tuple[int, ...] | list[int]) -> np.ndarray:
    """(L, K): for each layer, the largest normalised MI among its dims."""
    bounds = np.cumsum([0, *latent_dims])
    return np.stack([dim_factor_mi[start:end].max(axis=0) for start, end in zip(bounds[:-1], bounds[1:])])


def factor_information(means: list[np.ndarray], factors: np.ndarray, factor_names: tuple[str, ...]) -> dict:
    dim_factor_mi = normalised_mi(np.concatenate(means, axis=1), factors)
    per_layer = layer_mi(dim_factor_mi, [m.shape[1] for m in means])
    return {
        "names": list(factor_names),
        "mi": per_layer.round(6).tolist(),
        "mig": mig(dim_factor_mi),
        "holding_layer": {name: int(per_layer[:, k].argmax()) + 1 for k, name in enumerate(factor_names)},
    }


# ---- probes ----------------------------------------------------------------------------------------------------
def stratified_folds(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0 .. folds-1) of every image: each label's images are dealt round-robin in a seeded order."""
    order = np.random.default_rng(seed).permutation(len(labels))
    fold = np.empty(len(labels), dtype=np.int64)
    for value in np.unique(labels):
        members = order[labels[order] == value]
        fold[members] = np.arange(len(members)) % folds
    return fold


Predictor = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (fit_x, fit_y, test_x) -> test labels


def cross_validated_accuracy(predict: Predictor, features: np.ndarray, labels: np.ndarray, fold: np.ndarray) -> float:
    """Accuracy over all images, each predicted by `predict` fit on the other folds."""
    predicted = np.empty_like(labels)
    for k in np.unique(fold):
        test = fold == k
        predicted[test] = predict(features[~test], labels[~test], features[test])
    return float((predicted == labels).mean())


def logistic_regression(fit_x: np.ndarray, fit_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Labels predicted by multinomial logistic regression (L2 = PROBE_L2), full-batch L-BFGS in float64."""
    classes, targets = np.unique(fit_y, return_inverse=True)
    x = torch.as_tensor(fit_x, dtype=torch.float64)
    centre, scale = x.mean(0), x.std(0).clamp_min(1e-8)
    x = (x - centre) / scale
    y = torch.as_tensor(targets.ravel())
    weights = torch.zeros(x.shape[1], len(classes), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(classes), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights, bias], max_iter=PROBE_ITERATIONS, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ weights + bias, y) + PROBE_L2 * weights.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        test = (torch.as_tensor(test_x, dtype=torch.float64) - centre) / scale
        return classes[(test @ weights + bias).argmax(1).numpy()]


def majority_label(fit_x: np.ndarray, fit_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """The chance predictor: the fit images' most common label, for every test image."""
    values, counts = np.unique(fit_y, return_counts=True)
    return np.full(len(test_x), values[counts.argmax()])


def label_probes(means: list[np.ndarray], labels: dict[str, np.ndarray], seed: int,
                 progress: CountProgress) -> dict[str, dict]:
    """Per label (each with two or more values): chance and one cross-validated probe accuracy per layer."""
    results = {}
    for name, values in labels.items():
        fold = stratified_folds(values, PROBE_FOLDS, seed)
        accuracies = []
        for layer_means in means:
            accuracies.append(cross_validated_accuracy(logistic_regression, layer_means, values, fold))
            progress.advance()
        results[name] = {"chance": cross_validated_accuracy(majority_label, means[0], values, fold),
                         "layers": accuracies}
    return results


# ---- layer-level information -----------------------------------------------------------------------------------
def nearest_neighbour_vote(fit_x: np.ndarray, fit_y: np.ndarray, test_x: np.ndarray) -> np.ndarray:
    """Labels by a NEIGHBOURS-nearest-neighbour majority vote in Euclidean distance: it reads a layer's whole code,
    nonlinearly, and rotating the code (which the MMD prior and the decoder cannot tell apart) changes nothing."""
    classes, targets = np.unique(fit_y, return_inverse=True)
    fit = fit_x.astype(np.float64)
    fit_norms = (fit ** 2).sum(1)
    count = min(NEIGHBOURS, len(fit))
    predicted = []
    for start in range(0, len(test_x), BATCH_SIZE):
        block = test_x[start:start + BATCH_SIZE].astype(np.float64)
        distances = fit_norms[None, :] - 2 * block @ fit.T
        nearest = np.argpartition(distances, count - 1, axis=1)[:, :count]
        votes = np.zeros((len(block), len(classes)))
        np.add.at(votes, (np.arange(len(block))[:, None], targets.ravel()[nearest]), 1)
        predicted.append(classes[votes.argmax(1)])
    return np.concatenate(predicted)


def layer_information(means: list[np.ndarray], labels: dict[str, np.ndarray], seed: int) -> dict:
    """Per label: how much of it each layer's whole code holds, its share in the best layer, the gap to the
    runner-up layer, and how much of it is repeated in other layers (see the module docstring)."""
    information, accuracies = {}, {}
    for name, values in labels.items():
        fold = stratified_folds(values, PROBE_FOLDS, seed)
        chance = cross_validated_accuracy(majority_label, means[0], values, fold)
        accuracy = np.array([cross_validated_accuracy(nearest_neighbour_vote, layer, values, fold)
                             for layer in means])
        held = np.clip((accuracy - chance) / max(1.0 - chance, 1e-12), 0.0, 1.0)
        information[name] = held.round(6).tolist()
        accuracies[name] = {"chance": chance, "layers": accuracy.round(6).tolist()}
    return {"information": information, "accuracy": accuracies, **layer_summary(information)}


def layer_summary(information: dict[str, list[float]]) -> dict:
    """Holding layer, share, gap and redundancy of every label from its per-layer information, and their means
    over the labels that some layer reads (best layer at INFORMATION_FLOOR or more); the others have a holding
    layer only, as a share of near-nothing is noise."""
    holding, share, gap, redundancy = {}, {}, {}, {}
    for name, values in information.items():
        held = np.asarray(values, dtype=np.float64)
        ranked = np.sort(held)[::-1]
        holding[name] = int(held.argmax()) + 1
        if ranked[0] < INFORMATION_FLOOR:
            continue
        share[name] = float(ranked[0] / held.sum())
        gap[name] = float(ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0))
        redundancy[name] = float((held.sum() - ranked[0]) / ranked[0])
    mean = lambda values: float(np.mean(list(values.values()))) if values else 0.0  # noqa: E731
    return {"holding_layer": holding, "share": share, "gap": gap, "redundancy": redundancy,
            "labels_read": len(share), "mean_share": mean(share), "layer_gap": mean(gap),
            "mean_redundancy": mean(redundancy)}


# ---- toyfaces: renderings with known factors ------------------------------------------------------------------
def draw_factors(factors: dict[str, int], rng: np.random.Generator) -> dict[str, int]:
    """A random face: each factor uniform over its values."""
    return {name: int(rng.integers(count)) for name, count in factors.items()}


def render_batch(render: Renderer, factor_values: list[dict[str, int]], size: int, channels: int,
                 device: torch.device | str) -> torch.Tensor:
    """The renderer's images of `factor_values`, as floats in [0, 1] on `device`."""
    return to_unit(np.stack([render(values, size, channels) for values in factor_values]), device)


def render_variants(render: Renderer, faces: list[dict[str, int]], factor: str, count: int, size: int,
                    channels: int, device: torch.device | str) -> torch.Tensor:
    """Each face rendered at every value of `factor`, the other factors kept: (N, count, C, H, W)."""
    return render_batch(render, [{**face, factor: value} for face in faces for value in range(count)], size,
                        channels, device).view(len(faces), count, channels, size, size)


def nearest_value(variants: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """For each image, the index of the nearest (MSE) of its variants: variants (N, values, C, H, W), images
    (N, C, H, W)."""
    return (variants - images[:, None]).pow(2).flatten(2).mean(2).argmin(1)


# ---- factor reconstruction -------------------------------------------------------------------------------------
@torch.no_grad()
def factor_reconstruction(reconstruct: Callable[[torch.Tensor], torch.Tensor], render: Renderer,
                          factors: dict[str, int], image_size: int, channels: int, seed: int,
                          device: torch.device | str = "cpu", faces: int = RECONSTRUCTED_FACES,
                          progress: CountProgress | None = None) -> dict[str, dict]:
    """Per factor with two or more values: how often a reconstruction is nearest to the rendering with the true
    value of that factor (see the module docstring), and the chance of that."""
    rng = np.random.default_rng(seed)
    results = {}
    for factor, count in factors.items():
        if count < 2:
            continue
        drawn = [draw_factors(factors, rng) for _ in range(faces)]
        variants = render_variants(render, drawn, factor, count, image_size, channels, device)
        truth = torch.tensor([face[factor] for face in drawn], device=variants.device)
        rebuilt = reconstruct(variants[torch.arange(faces, device=variants.device), truth])
        results[factor] = {"accuracy": float((nearest_value(variants, rebuilt) == truth).float().mean()),
                           "chance": 1 / count}
        if progress:
            progress.advance()
    return results


# ---- arithmetic ------------------------------------------------------------------------------------------------
def sample_quadruple(factors: dict[str, int], changed: str, rng: np.random.Generator) -> list[dict[str, int]]:
    """[a, b, c, d]: a and b differ in `changed` only, c has b's value of it, d is c with a's value."""
    a = draw_factors(factors, rng)
    b = {**a, changed: (a[changed] + int(rng.integers(1, factors[changed]))) % factors[changed]}
    c = {**draw_factors(factors, rng), changed: b[changed]}
    return [a, b, c, {**c, changed: a[changed]}]


@torch.no_grad()
def arithmetic_scores(encode: Encoder, decode: Decoder, render: Renderer, factors: dict[str, int],
                      holding_layer: dict[str, int], image_size: int, channels: int, seed: int,
                      device: torch.device | str = "cpu", triples: int = ARITHMETIC_TRIPLES,
                      progress: CountProgress | None = None) -> dict[str, dict]:
    """Per factor with two or more values: mean PSNRs of the edit and its references, and how often the edit
    draws the factor's new value (see the module docstring).

    `holding_layer` is 1-based. `encode` / `decode` may be any pair of functions, so a stand-in that is exactly
    linear in the factors can check that this scores the maximum.
    """
    rng = np.random.default_rng(seed)
    results = {}
    for factor, count in factors.items():
        if count < 2 or factor not in holding_layer:  # the data was too small to find the factor's layer
            continue
        layer = holding_layer[factor] - 1
        scores: dict[str, list[np.ndarray]] = {"psnr": [], "psnr_layer": [], "psnr_unedited": [],
                                               "psnr_reconstruction": [], "accuracy": [], "accuracy_layer": []}
        for start in range(0, triples, BATCH_SIZE):
            quadruples = [sample_quadruple(factors, factor, rng) for _ in range(min(BATCH_SIZE, triples - start))]
            a, b, c, d = (render_batch(render, [q[i] for q in quadruples], image_size, channels, device)
                          for i in range(4))
            # d at every value of the factor: the edit is right when the nearest of these is d itself
            variants = render_variants(render, [q[3] for q in quadruples], factor, count, image_size, channels,
                                       device)
            wanted = torch.tensor([q[3][factor] for q in quadruples], device=variants.device)
            z_a, z_b, z_c, z_d = encode(a), encode(b), encode(c), encode(d)
            edited = [za - zb + zc for za, zb, zc in zip(z_a, z_b, z_c)]
            layer_edited = [edited[index] if index == layer else zc for index, zc in enumerate(z_c)]
            for psnr_key, accuracy_key, latents in (("psnr", "accuracy", edited),
                                                    ("psnr_layer", "accuracy_layer", layer_edited),
                                                    ("psnr_unedited", None, z_c), ("psnr_reconstruction", None, z_d)):
                decoded = decode(latents)
                scores[psnr_key].append(psnr(image_mse(decoded, d)))
                if accuracy_key:
                    hits = nearest_value(variants, decoded) == wanted
                    scores[accuracy_key].append(hits.float().cpu().numpy())
            if progress:
                progress.advance()
        results[factor] = {"layer": layer + 1, "chance": 1 / count,
                           **{key: float(np.concatenate(v).mean()) for key, v in scores.items()}}
    return results


# ---- the entry point -------------------------------------------------------------------------------------------
def has_renderer(data: ImageSet) -> bool:
    return parse_spec(data.spec)[0] == "toyfaces"


def evaluate_model(loaded: LoadedModel, data: ImageSet, seed: int = 0,
                   device: torch.device | str = "cpu") -> dict:
    """Every metric that `data` allows, as a JSON-ready dict (see the module docstring for the definitions)."""
    model, cfg = loaded.model, loaded.model.cfg
    expected = (cfg.channels, cfg.image_size, cfg.image_size)
    if data.images.shape[1:] != expected:
        raise FaceAlgebraError(f"data {data.spec!r} has images of shape {data.images.shape[1:]}, the model "
                               f"needs {expected}")
    subset = np.sort(np.random.default_rng(seed).permutation(len(data))[:EVAL_IMAGES])
    labels = {name: values[subset] for name, values in data.labels.items()}
    probe_labels = {name: values for name, values in labels.items() if probed(values, seed)}
    renderer_batches = (-(-ARITHMETIC_TRIPLES // BATCH_SIZE) + 1) * len(data.factor_names) if has_renderer(data) else 0
    progress = CountProgress("evaluate", -(-len(subset) // BATCH_SIZE)
                             + cfg.num_layers * len(probe_labels) + renderer_batches)
    device = torch.device(device)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            means, samples, errors, untuned = encode_images(loaded, data.images[subset], device, progress)
            result = {
                "model": str(loaded.path),
                "fingerprint": loaded.fingerprint,
                "reg": cfg.reg,
                "latent_dims": list(cfg.latent_dims),
                "data": data.spec,
                "training_data": loaded.training.get("data"),
                "images": int(len(subset)),
                "seed": seed,
                "reconstruction": {"mse": float(errors.mean()), "psnr": float(psnr(errors).mean()),
                                   "refine_steps": loaded.refine_steps, "tune_steps": loaded.tune_steps,
                                   "untuned": {"mse": float(untuned.mean()), "psnr": float(psnr(untuned).mean())}},
                "layers": layer_statistics(means, samples),
            }
            if data.factor_names:
                factors = np.stack([labels[name] for name in data.factor_names], axis=1)
                result["factors"] = factor_information(means, factors, data.factor_names)
            result["probes"] = label_probes(means, probe_labels, seed, progress)
            result["layer_information"] = layer_information(means, probe_labels, seed)
            if has_renderer(data):
                from facealgebra.data.toyfaces import FACTORS, render

                factor_counts = {name: FACTORS[name] for name in data.factor_names}
                result["factor_reconstruction"] = factor_reconstruction(
                    lambda x: model.decode(model.encode(x)), render, factor_counts, cfg.image_size, cfg.channels,
                    seed, device, progress=progress)
                result["arithmetic"] = arithmetic_scores(
                    model.encode, model.decode, render, factor_counts, result["layer_information"]["holding_layer"],
                    cfg.image_size, cfg.channels, seed, device, progress=progress)
    finally:
        progress.close()
    return result


# ---- text report -----------------------------------------------------------------------------------------------
def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned others, two spaces apart."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in [header, *rows]]


def refined_note(recon: dict) -> str:
    """How the reconstructions were made, when not by the encoder and the model alone."""
    notes = [f"codes refined by {recon['refine_steps']} steps"] if recon.get("refine_steps") else []
    if recon.get("tune_steps"):
        notes.append(f"decoder tuned to each image by {recon['tune_steps']} steps; untuned "
                     f"{recon['untuned']['psnr']:.2f} dB")
    return "".join(f", {note}" for note in notes)


def report_lines(result: dict) -> list[str]:
    """A readable summary of an `evaluate_model` result, for the terminal."""
    layer_names = [f"z{layer['layer']}" for layer in result["layers"]]
    recon = result["reconstruction"]
    lines = [f"{result['model']} ({result['reg']}, latents {'+'.join(map(str, result['latent_dims']))}) on "
             f"{result['data']}: {result['images']} images, seed {result['seed']}",
             f"reconstruction: MSE {recon['mse']:.5f}, PSNR {recon['psnr']:.2f} dB"
             f"{refined_note(recon)} (the model trained on "
             f"{result['training_data']}: held out only if that excludes these images)", ""]
    lines += table(["layer", "dims", "active", "MMD^2"], [
        [name, str(layer["dims"]), "-" if layer["active_dims"] is None else str(layer["active_dims"]),
         "-" if layer["mmd"] is None else f"{layer['mmd']:.4f}"]
        for name, layer in zip(layer_names, result["layers"])])
    if result["layers"][0]["mmd"] is None:
        lines.append(f"active dims and MMD^2: not measurable on {result['images']} image (they need 2 or more)")
    elif not any(layer["active_dims"] for layer in result["layers"]):
        lines.append(f"no active dims (posterior-mean variance over {ACTIVE_VARIANCE} in no dim): the usual sign of "
                     "posterior collapse")
    if "factors" in result:
        factors = result["factors"]
        lines += ["", f"normalised MI, max over each layer's dims (MIG {factors['mig']:.3f})"]
        lines += table(["factor", *layer_names, "holds"], [
            [name, *(f"{row[k]:.2f}" for row in factors["mi"]), f"z{factors['holding_layer'][name]}"]
            for k, name in enumerate(factors["names"])])
    if result["probes"]:
        lines += ["", "probe accuracy on held-out images (logistic regression on one layer)"]
        lines += table(["label", "chance", *layer_names], [
            [name, f"{probe['chance']:.3f}", *(f"{a:.3f}" for a in probe["layers"])]
            for name, probe in result["probes"].items()])
    if result.get("layer_information", {}).get("information"):
        held = result["layer_information"]
        lines += ["", f"layer-level information: a 5-NN vote on each layer's whole code, 0 = chance, 1 = every "
                  f"image right; over the {held['labels_read']} labels some layer reads: mean share in the best "
                  f"layer {held['mean_share']:.2f}, layer gap {held['layer_gap']:.2f}, redundancy "
                  f"{held['mean_redundancy']:.2f})"]
        lines += table(["label", *layer_names, "holds", "share", "gap"], [
            [name, *(f"{value:.2f}" for value in row), f"z{held['holding_layer'][name]}",
             *((f"{held['share'][name]:.2f}", f"{held['gap'][name]:.2f}") if name in held["share"] else
               ("not read", "-"))]
            for name, row in held["information"].items()])
    if "factor_reconstruction" in result:
        lines += ["", "factor reconstruction: how often the reconstruction is nearest to the rendering with the "
                  "true value"]
        lines += table(["factor", "chance", "accuracy"], [
            [name, f"{score['chance']:.3f}", f"{score['accuracy']:.3f}"]
            for name, score in result["factor_reconstruction"].items()])
    if result.get("arithmetic"):
        lines += ["", "arithmetic PSNR (dB): decode(z_a - z_b + z_c) against the rendered truth"]
        lines += table(["factor", "layer", "all layers", "that layer", "unedited", "reconstruction"], [
            [name, f"z{score['layer']}", f"{score['psnr']:.2f}", f"{score['psnr_layer']:.2f}",
             f"{score['psnr_unedited']:.2f}", f"{score['psnr_reconstruction']:.2f}"]
            for name, score in result["arithmetic"].items()])
        lines += ["", "arithmetic accuracy: how often decode(z_a - z_b + z_c) is nearest to the rendering with the "
                  "new value"]
        lines += table(["factor", "chance", "all layers", "that layer"], [
            [name, f"{score['chance']:.3f}", f"{score['accuracy']:.3f}", f"{score['accuracy_layer']:.3f}"]
            for name, score in result["arithmetic"].items()])
    return lines


# ---- heatmap ---------------------------------------------------------------------------------------------------
CELL_WIDTH, CELL_HEIGHT = 72, 30
LOW_COLOUR = np.array([255, 255, 255])
HIGH_COLOUR = np.array([8, 48, 107])


HEATMAP_MEASURES = {
    "mi": "MI / H(factor), max over each layer's dims",
    "information": "5-NN on each layer's whole code: 0 chance, 1 all right",
}


def heatmap_image(result: dict, title: str, kind: str = "mi") -> Image.Image:
    """A factor x layer matrix of an `evaluate_model` result, values in cells: the normalised MI ("mi") or the
    layer-level information ("information"). Factors run down and layers across so that the heatmaps of several
    models sit side by side."""
    if kind == "mi":
        matrix, factor_names = np.asarray(result["factors"]["mi"]).T, result["factors"]["names"]  # (factors, layers)
    else:
        information = result["layer_information"]["information"]
        factor_names = list(information)
        matrix = np.asarray([information[name] for name in factor_names])
    layers = matrix.shape[1]
    column_labels = [(f"z{layer + 1}", "shallow" if layer == 0 and layers > 1 else "deep" if layer == layers - 1
                      and layers > 1 else "") for layer in range(layers)]
    font, small = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = int(max(measure.textlength(name, font=font) for name in factor_names)) + 18
    top = 96
    subtitle = HEATMAP_MEASURES[kind]
    width = max(left + CELL_WIDTH * layers + 12, int(measure.textlength(title, font=font)) + 20,
                int(measure.textlength(subtitle, font=small)) + 20)
    image = Image.new("RGB", (width, top + CELL_HEIGHT * len(factor_names) + 12), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 8), title, fill="black", font=font)
    draw.text((10, 28), subtitle, fill="dimgray", font=small)
    for layer, (name, depth) in enumerate(column_labels):
        x = left + CELL_WIDTH * (layer + 0.5)
        draw.text((x, top - 22), name, fill="black", font=font, anchor="md")
        draw.text((x, top - 6), depth, fill="dimgray", font=small, anchor="md")
    for row, name in enumerate(factor_names):
        y = top + CELL_HEIGHT * row
        draw.text((left - 8, y + CELL_HEIGHT / 2), name, fill="black", font=font, anchor="rm")
        for layer, value in enumerate(matrix[row]):
            x = left + CELL_WIDTH * layer
            colour = tuple(int(c) for c in LOW_COLOUR + (HIGH_COLOUR - LOW_COLOUR) * float(np.clip(value, 0, 1)))
            draw.rectangle([x, y, x + CELL_WIDTH - 2, y + CELL_HEIGHT - 2], fill=colour)
            draw.text((x + CELL_WIDTH / 2, y + CELL_HEIGHT / 2), f"{value:.2f}",
                      fill="white" if value > 0.5 else "black", font=small, anchor="mm")
    return image


def save_heatmap(result: dict, path: str, title: str) -> None:
    """Write `heatmap_image` as a PNG, atomically."""
    save_image(heatmap_image(result, title), path)

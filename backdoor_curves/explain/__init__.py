"""Explanations of single predictions: influential training points and input-gradient maps.

- :func:`influential_points`, :func:`training_influence`: the influence of every training point
  (clean and poisoned) on the loss of test points, exact for the four convex learners, from one
  factorization of the Hessian (smooth learners) or of the SVM's KKT matrix;
- :func:`poisoning_contributions`: the backdoor learning slope split into one contribution per
  poisoning point (they add up to ``backdoor_slope(...).derivative``);
- :func:`input_gradient_map`, :func:`clean_and_poisoned_maps`: gradients of the decision
  function with respect to the input (paper 001, Fig. 12), also through a torch feature map;
- figures: :func:`plot_influential_points`, :func:`plot_input_gradients`,
  :func:`plot_poisoning_contributions`.

Sign and scale follow the backdoor slope (DESIGN §4): an influence is the derivative of a mean
test loss with respect to the weight of one training point (weight 1 = one ordinary point);
negative means that up-weighting the point lowers the test loss.
"""

from .influence import (
    InfluentialPoints,
    PoisoningContributions,
    TrainingInfluence,
    influence_of_fitted,
    influential_points,
    poisoning_contributions,
    training_influence,
)
from .plots import plot_influential_points, plot_input_gradients, plot_poisoning_contributions
from .saliency import (
    clean_and_poisoned_maps,
    decision_gradient,
    input_gradient_map,
    reduce_channels,
)

__all__ = [
    "InfluentialPoints",
    "PoisoningContributions",
    "TrainingInfluence",
    "clean_and_poisoned_maps",
    "decision_gradient",
    "influence_of_fitted",
    "influential_points",
    "input_gradient_map",
    "plot_influential_points",
    "plot_input_gradients",
    "plot_poisoning_contributions",
    "poisoning_contributions",
    "reduce_channels",
    "training_influence",
]

"""Set codes of the SVM dual path, shared by the walker (:mod:`.svm`) and its compiled step
(:mod:`._svm_step`): a point's dual is 0 (ZERO), strictly inside its box (MARGIN) or at it (BOUND).
"""

ZERO, MARGIN, BOUND = 0, 1, 2
NAMES = {ZERO: "zero", MARGIN: "margin", BOUND: "bound"}

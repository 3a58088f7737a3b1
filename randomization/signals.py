"""What a randomisation tells the apps above this one (which randomization may not import).

`family_randomised` is sent inside the randomisation's transaction, after the allocation is stored, with the
family's row locked; a receiver's error rolls the randomisation back. Arguments: family, allocation,
randomised_by. Receivers must not reveal the arm to anyone blinded (the follow-up schedule is the same in both
arms).
"""

from django.dispatch import Signal

family_randomised = Signal()

"""What a family's life cycle tells the apps above this one (which families may not import).

`family_consented` is sent inside the consent's transaction, with the family's row locked (arguments: family,
consent, recorded_by): follow-ups schedules the baseline assessment.

`family_withdrawn` is sent inside the withdrawal's transaction, with the family's row locked; a receiver's
error rolls the withdrawal back. Arguments: family, withdrawal, recorded_by.
"""

from django.dispatch import Signal

family_withdrawn = Signal()
family_consented = Signal()

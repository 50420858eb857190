"""Reports: the HTML report, agents' feedback and the published warehouse; see ``assets.py``."""

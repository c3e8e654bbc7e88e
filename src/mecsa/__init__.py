"""mecsa: assess, harden and prove the security of a mail domain."""

__version__ = "0.1.0"

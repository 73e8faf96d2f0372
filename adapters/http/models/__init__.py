"""Request models (``XCreate``, ``XUpdate``) and response models (``XPublic``) per resource."""

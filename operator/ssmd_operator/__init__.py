"""The ssmd Kubernetes operator (kopf): Environment and Feed resources reconciled into
running pipelines, with the resources' status as the metadata registry.

Run it with ``ssmd operator`` (or ``kopf run -m ssmd_operator.handlers``). The modules are
plain functions (spec -> desired objects, schedule -> desired phase, ...) and
:mod:`ssmd_operator.handlers` holds only the kopf registrations."""

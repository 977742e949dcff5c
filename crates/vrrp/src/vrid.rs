//! OpenShift's fletcher8 virtual router id derivation (reference/openshift.md section 2).

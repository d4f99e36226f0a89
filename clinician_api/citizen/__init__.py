"""Patients and relatives as users: national sign-in (OpenID Connect), sessions, what each may do for whom
(own data, proxies), and the patient app "Min oppfølging"."""

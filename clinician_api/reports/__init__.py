"""Reports of one patient for the GP or the hospital record.

- `period`: what a period summary holds, read from the database
- `pdf`: the period summary as a PDF in bokmål or English (reportlab)
- `document`: the PDF as a FHIR DocumentReference, journaled through the record delivery's outbox
"""

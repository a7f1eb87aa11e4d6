"""Hand-kept word lists of the person_name detector, upper case.

The census lists (name_lists.py) say which words CAN be names; these say when a
capitalized word is most likely something else. Kept by hand, reviewed like code.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.upper().split())


# Capitalized words of log lines, UIs, medicine and addresses that are never taken as
# part of a name (a few are rare surnames too: the price of precision). Months that
# are no first names and weekdays are here; April, May, June, ... are AMBIGUOUS_FIRST.
NOT_NAMES = _words(
    """
    January February March September October November December Feb Mar Apr Jun Jul
    Aug Sep Sept Oct Nov Dec Monday Tuesday Wednesday Thursday Friday Saturday Sunday
    Mon Tue Tues Wed Thu Thur Thurs Fri Sat Today Tomorrow Yesterday Morning Afternoon
    Evening Night Noon Midnight Day Days Week Weeks Month Months Year Years Hour Hours
    Minute Minutes Second Seconds Time Date Dates Timestamp

    The A An And Or But Nor Of In On At To For By With From Into Onto Over Under After
    Before During About Above Below Between Per Via Than Then Else When Where Why How
    What Which Who Whom Whose This That These Those It Its Is Are Was Were Be Been Being
    Has Have Had Do Does Did Done Can Could Might Must Shall Should Would If Not No Yes
    All Any Some Each Every Both Either Neither Other Others Another Such Same Only Also
    Just Very More Most Less Least Many Much Few Several Your You We Our They Their He
    She His Her Him Me My Mine Us Them Here There Now Never Always Still Again Once
    Please Thanks Thank Hello Hi Hey Dear Welcome Sorry Regards Sincerely Cheers
    Ok Okay Null None Nil True False Undefined Unknown Other Misc Etc Yes

    Error Errors Exception Exceptions Warning Warnings Warn Info Information Debug
    Trace Traceback Fatal Critical Notice Alert Alerts Panic Caused Stack Frame Line
    Server Servers Client Clients Agent Agents User Users Request Requests Response
    Responses Timeout Timeouts Gateway Proxy Load Balancer Cache Cached Database Table
    Tables Query Queries Index Schema Event Events Audit Log Logs Logger Logging Message
    Messages Queue Queues Topic Stream Batch Job Jobs Task Tasks Worker Workers Pool
    Thread Threads Process Handler Controller Module Plugin Component Interface
    Engine Bridge Router Adapter Connector Integration Sync Import Export Upload
    Download File Files Folder Directory Path Key Keys Token Tokens Secret Certificate
    Session Sessions Login Logout Logon Signin Signup Password Reset Access Denied
    Forbidden Unauthorized Authentication Authorization Auth Invalid Valid Bad Found
    Internal External Unavailable Available Status State Health Healthy Unhealthy Check
    Checks Ready Live Liveness Readiness Startup Shutdown Restart Restarted Start Started
    Starting Stop Stopped Stopping Connection Connections Connected Disconnected Refused
    Closed Close Open Opened Established Lost Failed Fail Failure Failures Success
    Succeeded Successful Successfully Complete Completed Pending Running Queued
    Scheduled Cancelled Canceled Expired Retry Retrying Retries Skipped Ignored Received
    Sent Sending Send Processing Processed Loading Loaded Saving Saved Created Create
    Updated Update Updates Deleted Delete Removed Remove Added Add Changed Change
    Modified Merged Merge Migrated Migration Deployed Released Version Build Release
    Deploy Deployment Production Staging Development Dev Prod Test Tests Testing Default
    Main Master Secondary Replica Leader Follower Node Nodes Cluster Pod Pods Container
    Image Volume Namespace Ingress Kubernetes Docker Linux Windows Ubuntu Debian Android
    Chrome Safari Firefox Edge Opera Mozilla Gecko Apple Google Microsoft Amazon Azure
    Oracle Java Python Redis Postgres Postgresql Kafka Nginx Apache Tomcat Epic Cerner
    Meditech Interconnect Mobile Desktop Web Website App Apps Application Applications
    Api Console Dashboard Settings Setting Config Configuration Profile Profiles Home
    Search Results Result List View Edit Save Cancel Submit Confirm Continue Click
    Button Form Value Values Name Names First Last Middle Full Display
    Title Description Address Street Phone Fax Email Mail Work Business Personal
    Contact Contacts Birth Age Gender Sex Male Female Race Ethnicity Language Marital
    Data Cloud Storage Backup Network Networks Security Policy Policies Rule Rules
    Role Roles Permission Permissions Group Groups Team Teams Office Desk Front Station
    Support Help Helpdesk Manager Management Director Officer Assistant Coordinator
    Administrator Admin Operator Owner Service Services Solutions Systems System Inc
    Corp Corporation Company Co Llc Ltd Foundation Institute Association Society
    Council Board Committee Partners Associates Department Dept Division Div Unit Units
    Room Bed Floor Wing Building Campus Total Count Number Numbers Size Type Types
    Id Ids Code Codes Level Levels Mode Limit Limits Rate Rates Ratio Score Percent
    Average Max Min Sum Next Previous Current New Old Latest Final Initial Draft Active
    Inactive Enabled Disabled Public Private Local Remote Global Online Offline Manual
    Automatic Auto

    Patient Patients Doctor Doctors Nurse Nurses Physician Physicians Provider Providers
    Practitioner Specialist Surgeon Therapist Pharmacist Technician Staff Resident
    Emergency Hospital Hospitals Clinic Clinics Center Centre Medical Health Healthcare
    Care Urgent Primary Family Medicine Surgery Surgical Pediatrics Pediatric Cardiology
    Oncology Radiology Neurology Orthopedics Dermatology Psychiatry Obstetrics
    Gynecology Pharmacy Pharmacies Lab Labs Laboratory Pathology Imaging Therapy
    Physical Occupational Behavioral Mental Dental Vision Nursing Hospice Rehab
    Rehabilitation Intensive Memorial General Regional Community University College
    School Academy Blood Pressure Heart Chest Pain Acute Chronic Diabetes Cancer Disease
    Syndrome Disorder Panel Culture Screen Screening Exam Visit Visits Encounter
    Encounters Admission Admissions Discharge Transfer Referral Referrals Order Orders
    Prescription Prescriptions Refill Refills Medication Medications Dose Allergy
    Allergies Immunization Vaccine Vaccines Vitals History Note Notes Chart Charts Record
    Records Summary Report Reports Plan Plans Problem Problems Diagnosis Procedure
    Procedures Claim Claims Billing Payment Payments Pay Insurance Coverage Eligibility
    Benefit Benefits Member Members Subscriber Payer Payers Prior Copay Deductible
    Balance Statement Invoice Account Accounts Portal Bank Card Cards Money Appointment
    Appointments Schedule Scheduling Calendar Reminder Reminders Follow Up Lookup
    Demographics Registration Intake Triage Consent Consult Consultation Observation
    Specimen Sample Study Series Bundle Resource Resources Fhir Hl7 Adt Dicom

    Jr Sr Sir Madam Mister Mrs Mr Ms Mx Dr Prof Md Rn Np Pa Phd Esq
    Saint St Mount Mt Valley County City Cities State States Country Nation North South
    East West Central Northern Southern Eastern Western Upper Lower Greater Metro Avenue
    Ave Road Rd Drive Dr Boulevard Blvd Highway Hwy Suite Ste Apt Box Route Court Ct Place
    Square Plaza Terrace Trail Parkway Circle Way
    """
)

# First names that are also common words, places or months: taken as a first name only
# before a listed surname (`Will Smith`, not `Will retry`) or after a cue (`Dr. Will`).
AMBIGUOUS_FIRST = _words(
    """
    Will Grant Bill Mark Page Guy Major Prince Royal Noble Chance Sterling Ivory Long
    Young King Son Man German Mac Rich Art Don Forest Dale Glen Cliff Rod Buck Bud
    Sandy Rusty Dusty Rocky Sonny Buddy Junior Earnest Frank Jack Gene Crystal Amber
    Joy Hope Faith Grace Iris Ruby Pearl Dawn Summer Autumn Winter Spring Holly Ivy Lily
    Daisy Violet Rose Heather Destiny Harmony Charity Mercy Patience Liberty Star Sunny
    Windy Jewel Precious Angel Candy Ginger Honey Misty Stormy Diamond Jade Olive Hazel
    Fern Willow Magnolia Melody Princess Queen Lady Delta Echo Alpha Nova Glory Eden
    Easter Venus Santa Velvet Coral Garnet Cherry Sunshine Trinity Raven Brook Lane
    Reed Dean Christian Jesus Kit Kitty Bunny Dolly Penny Pat Kay Ray Gay Dee Carol Era
    Ora Ina Belle Bell Merry Birdie Vita Sage Ward Hunter Booker Earl Marshall Cole Clay
    Heath Golden Constance Prudence Tanner Fletcher Mason Porter Walker Clement Drew
    Miles Chase Carter Parker Foster Palmer Lance Wade Taylor Bailey Robin Sol Van Von
    Del Ma Mi Su Lu Yu Ha Sun Lo Le La
    April May June July August
    Austin Houston Dallas Denver Orlando Raleigh Columbus Trenton Chester Milan Geneva
    Darwin Kenya Israel Georgia Carolina Florida Dakota Savannah Paris Sierra India Asia
    America China France Roman Santiago Trinidad Augusta Cleveland Troy Lincoln Jackson
    Washington Franklin Jefferson Columbia Alexandria Mercedes Phoenix Memphis Sydney
    """
)

# Titles that stand right before a name and are matched with it (`Dr. Ann Lee`).
TITLES = (
    "Doctor", "Dr", "DR", "dr", "Mrs", "MRS", "Mr", "MR", "mr", "Ms", "Mx", "Miss",
    "Mister", "Prof", "Patient", "PATIENT", "patient", "Pt", "PT", "pt",
)  # fmt: skip

# Words right before a run of capitalized words that say it is a person's name
# (`seen by Ann Lee`, `caller: Ann Lee`); matched case-insensitively.
CUES_BEFORE = (
    "name", "patient", "pt", "seen by", "referred by", "signed by", "ordered by",
    "entered by", "reviewed by", "verified by", "approved by", "attending", "physician",
    "provider", "nurse", "caller", "guardian", "spouse", "husband", "wife", "mother",
    "father", "daughter", "son", "parent", "contact", "subscriber", "guarantor",
    "insured", "dear", "dr", "mr", "mrs", "ms",
)  # fmt: skip

"""Prints a stored message as seen by Python's own MIME parser, one fact per line:

    header<TAB>Name<TAB>decoded value        (one line per occurrence)
    part<TAB>content-type<TAB>decoded body with newlines written as \\n

so the Rust tests check our output against an independent implementation.
"""
import email
import email.policy
import sys

with open(sys.argv[1], "rb") as f:
    msg = email.message_from_binary_file(f, policy=email.policy.default)

for name, value in msg.items():
    print("header\t%s\t%s" % (name, str(value).replace("\n", " ")))
print("header\tContent-Type-Main\t%s" % msg.get_content_type())
for part in msg.walk():
    if part.is_multipart():
        continue
    body = part.get_content()
    print("part\t%s\t%s" % (part.get_content_type(), body.replace("\r\n", "\n").replace("\n", "\\n")))

"""The self-hosted relay (`appliance relay`): a rendezvous that forwards sealed blobs it cannot
read or forge between one box and at most one viewer per room, and keeps nothing."""

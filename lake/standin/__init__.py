"""The local stand-in for AWS: a moto server provisioned like the CDK stack (:mod:`.server`), what moto
lacks (:mod:`.moto_gaps`, :mod:`.s3_events`), its saved state (:mod:`.state`, :mod:`.checkpoint`), and
the runner that plays Lambda's pollers (:mod:`.runner`, :mod:`.worker`). Imports nothing of the
command's."""

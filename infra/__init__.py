"""Infrastructure: the CloudFormation template, its packaging and deployment, and the local
stack."""

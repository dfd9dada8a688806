{% import "labels.md" as l %}
# Creates the read-only IAM role that lets the billing platform read AWS
# account {{ account_id }}: ReadOnlyAccess reads almost everything in the
# account and changes nothing. Apply it with credentials of that account:
# terraform init && terraform apply.{% if probing %} Keep the role name:
# the platform then finds the role automatically within minutes; nothing to send.
{% else %} Then send the role_arn
# output to whoever sent you this configuration.
{% endif %}

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

locals {
  # Who this role is for, as orglink has it.
  orglink_account_id = {{ account_id | hcl }}
  orglink_customer   = {{ customer | hcl }}
}

variable "external_id" {
  description = "This account's external ID, exactly as given"
  type        = string
  default     = {{ external_id | hcl }}
}

variable "role_name" {
  description = "The role's name: keep it, and the platform finds the role automatically"
  type        = string
  default     = {{ role_name | hcl }}
}

resource "aws_iam_role" "orglink" {
  name                 = var.role_name
  description          = {{ l.role_description() | hcl }}
  max_session_duration = 3600
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { AWS = {{ principal | hcl }} }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "sts:ExternalId" = var.external_id } }
    }]
  })
}

resource "aws_iam_role_policy_attachment" "read_only" {
  role       = aws_iam_role.orglink.name
  policy_arn = {{ read_only_policy_arn | hcl }}
}
{% if business %}

# Business support: the platform's security and compliance report uses
# AWSSupportAccess (the role is verified without it).
resource "aws_iam_role_policy_attachment" "support" {
  role       = aws_iam_role.orglink.name
  policy_arn = {{ support_policy_arn | hcl }}
}
{% endif %}

output "role_arn" {
  description = "The role's ARN"
  value       = aws_iam_role.orglink.arn
}

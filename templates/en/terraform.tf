{% import "labels.md" as l %}
# Creates the read-only IAM role that lets the billing platform read AWS
# account {{ account_id }}. Apply it with credentials of that account:
# terraform init && terraform apply{% if probing %}. Keep the role name:
# orglink then finds the role by itself within minutes, nothing to send back.
{% else %}, then send the role_arn output back to orglink.
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
  description = "The external ID orglink gave this account, exactly"
  type        = string
  default     = {{ external_id | hcl }}
}

variable "role_name" {
  description = "The role's name: keep it, and orglink finds the role by itself"
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

# Optional, for the platform's security and compliance report (Business support).
resource "aws_iam_role_policy_attachment" "support" {
  role       = aws_iam_role.orglink.name
  policy_arn = {{ support_policy_arn | hcl }}
}
{% endif %}

output "role_arn" {
  description = "The role's ARN"
  value       = aws_iam_role.orglink.arn
}

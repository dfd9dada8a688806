{% import "labels.md" as l %}
# Crea el rol de IAM de solo lectura que permite a la plataforma de
# facturación leer la cuenta de AWS {{ account_id }}: ReadOnlyAccess lee casi
# todo en la cuenta y no cambia nada. Aplíquelo con credenciales de esa
# cuenta: terraform init && terraform apply.{% if probing %} Mantenga el nombre del rol:
# la plataforma encuentra el rol automáticamente en unos minutos; no hay que
# enviar nada.
{% else %} Luego envíe la salida
# role_arn a quien le envió esta configuración.
{% endif %}

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

locals {
  # Para quién es este rol, según orglink.
  orglink_account_id = {{ account_id | hcl }}
  orglink_customer   = {{ customer | hcl }}
}

variable "external_id" {
  description = "El ID externo de esta cuenta, exactamente como se le dio"
  type        = string
  default     = {{ external_id | hcl }}
}

variable "role_name" {
  description = "El nombre del rol: consérvelo y la plataforma encuentra el rol automáticamente"
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

# Plan de soporte Business: el informe de seguridad y cumplimiento de la
# plataforma usa AWSSupportAccess (el rol se verifica sin ella).
resource "aws_iam_role_policy_attachment" "support" {
  role       = aws_iam_role.orglink.name
  policy_arn = {{ support_policy_arn | hcl }}
}
{% endif %}

output "role_arn" {
  description = "El ARN del rol"
  value       = aws_iam_role.orglink.arn
}

{% import "labels.md" as l %}
# Crea el rol de IAM de solo lectura que permite a la plataforma de
# facturación leer la cuenta de AWS {{ account_id }}: ReadOnlyAccess lee casi
# todo en la cuenta y no cambia nada.
{% if business %}
# Para el plan de soporte Business también asocia AWSSupportAccess, que usa el
# informe de seguridad y cumplimiento de la plataforma (el rol se verifica
# sin ella).
{% endif %}
# Ejecútelo con credenciales de esa cuenta que puedan crear roles de IAM
# (sirve AWS CloudShell en la consola de la cuenta).{% if probing %} Mantenga el nombre del
# rol: la plataforma lo encuentra automáticamente en unos minutos; no hay que enviar nada.
{% else %} Luego envíe el ARN que
# imprime el último comando a quien le envió estos comandos.
{% endif %}set -euo pipefail

account_id={{ account_id | sh }}
customer={{ customer | sh }}
role_name={{ role_name | sh }}

if aws iam get-role --role-name "$role_name" >/dev/null 2>&1; then
  echo "Ya existe un rol llamado $role_name en la cuenta de AWS $account_id: este script no lo modifica." >&2
  echo "Si lo creó antes con estas instrucciones, no hay nada más que ejecutar. Si no, ponga en role_name, arriba, un nombre que no esté en uso (y envíe luego el ARN del nuevo rol a quien le envió estos comandos), o revise la política de confianza de ese rol: solo la cuenta de la plataforma, con el ID externo de esta cuenta." >&2
  exit 1
fi
printf 'Creando el rol %s en la cuenta de AWS %s (%s).\n' "$role_name" "$account_id" "$customer"
aws iam create-role --role-name "$role_name" --description {{ l.role_description() | sh }} --assume-role-policy-document {{ trust_policy | sh }}
{% for arn in managed_policy_arns %}
aws iam attach-role-policy --role-name "$role_name" --policy-arn {{ arn | sh }}
{% endfor %}
aws iam get-role --role-name "$role_name" --query Role.Arn --output text

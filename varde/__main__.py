from varde.cli import main

main()
